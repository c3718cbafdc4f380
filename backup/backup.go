// Package backup is the format of a region's backup file: a magic line, a
// JSON header (region, raft position, formats, key ids), the state
// machine's snapshot exactly as raft stores it, and an HMAC-SHA256 trailer
// over all of it under a key only the region's nodes hold (Key), so that a
// truncated, altered or forged file is refused before anything is
// restored. The file leaves the node only encrypted to the operators' age
// recipients (Seal): the state holds portal accounts' password hashes and
// second-factor secrets, submissions and code hashes.
package backup

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// Magic starts every backup file; Version is the format of what follows.
const (
	Magic   = "covid-backend backup\n"
	Version = 2
)

// Key is the key of a backup's trailer, derived from a secret every node
// of the region holds (its first code key) and no one else: a file made
// by anyone else, or edited, does not restore.
func Key(regionSecret []byte) []byte {
	m := hmac.New(sha256.New, regionSecret)
	m.Write([]byte("covid-backend backup trailer"))
	return m.Sum(nil)
}

// ParseRecipients reads comma-separated age recipients (age1…).
func ParseRecipients(list string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, r := range strings.Split(list, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		rec, err := age.ParseX25519Recipient(r)
		if err != nil {
			return nil, fmt.Errorf("age recipient %q: %w", r, err)
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, errors.New("no age recipient: a backup leaves the node only encrypted (covid-node keygen --age makes a key pair)")
	}
	return out, nil
}

// Seal encrypts what is written to the returned writer to the recipients;
// closing it ends the encrypted file (it does not close w).
func Seal(w io.Writer, recipients []age.Recipient) (io.WriteCloser, error) {
	return age.Encrypt(w, recipients...)
}

// Unseal decrypts an encrypted backup with the operator's identities.
func Unseal(r io.Reader, identities []age.Identity) (io.Reader, error) {
	out, err := age.Decrypt(r, identities...)
	if err != nil {
		return nil, fmt.Errorf("decrypt backup: %w", err)
	}
	return out, nil
}

// Header says what a backup holds.
type Header struct {
	Version     int    `json:"version"`
	Region      string `json:"region"`
	CreatedUnix int64  `json:"created_unix"`
	// RaftIndex and RaftTerm are where in the region's log the state was.
	RaftIndex uint64 `json:"raft_index"`
	RaftTerm  uint64 `json:"raft_term"`
	// SnapshotVersion and CommandVersion are the formats of the state.
	SnapshotVersion uint32 `json:"snapshot_version"`
	CommandVersion  uint32 `json:"command_version"`
	// ExportKeys (id/version) and FederationKeyID name the keys the
	// restored region needs to serve the same files and go on signing.
	ExportKeys      []string `json:"export_keys,omitempty"`
	FederationKeyID string   `json:"federation_key_id,omitempty"`
	// Size is the length of the snapshot that follows.
	Size int64 `json:"size"`
}

// Write writes a backup: magic, header, the snapshot (exactly h.Size
// bytes) and the trailer, an HMAC under key (Key).
func Write(w io.Writer, h Header, snapshot io.Reader, key []byte) error {
	h.Version = Version
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	sum := hmac.New(sha256.New, key)
	if _, err := io.WriteString(io.MultiWriter(w, sum), Magic+string(head)+"\n"); err != nil {
		return err
	}
	n, err := io.Copy(io.MultiWriter(w, sum), io.LimitReader(snapshot, h.Size))
	if err != nil {
		return fmt.Errorf("backup: copy snapshot: %w", err)
	}
	if n != h.Size {
		return fmt.Errorf("backup: snapshot has %d bytes, header says %d", n, h.Size)
	}
	_, err = fmt.Fprintf(w, "hmac-sha256:%x\n", sum.Sum(nil))
	return err
}

// ErrCorrupt means a file is not a whole, unaltered backup.
var ErrCorrupt = errors.New("not a whole backup file (truncated or altered)")

// Open reads a backup into a temporary file in dir, checking its trailer
// under each of keys (the region's, during a rotation more than one), and
// returns its header and the verified snapshot, read from its start; the
// caller ends with Discard.
func Open(r io.Reader, dir string, keys [][]byte) (Header, *os.File, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != Magic {
		return Header{}, nil, fmt.Errorf("%w: no backup magic", ErrCorrupt)
	}
	line, err := br.ReadString('\n')
	var h Header
	if err != nil || json.Unmarshal([]byte(line), &h) != nil {
		return Header{}, nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	if h.Version == 1 {
		return Header{}, nil, errors.New("backup format 1 has no authenticated trailer, and this build restores only backups it can tell came from the region: restore it with the build that made it, then back up again")
	}
	if h.Version != Version {
		return Header{}, nil, fmt.Errorf("backup format %d; this build reads %d", h.Version, Version)
	}
	sums := make([]hash.Hash, len(keys))
	writers := make([]io.Writer, len(keys))
	for i, k := range keys {
		sums[i] = hmac.New(sha256.New, k)
		sums[i].Write(magic)
		sums[i].Write([]byte(line))
		writers[i] = sums[i]
	}
	sum := io.MultiWriter(writers...)
	tmp, err := os.CreateTemp(dir, "restore-*")
	if err != nil {
		return Header{}, nil, err
	}
	fail := func(err error) (Header, *os.File, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return Header{}, nil, err
	}
	if n, err := io.Copy(io.MultiWriter(tmp, sum), io.LimitReader(br, h.Size)); err != nil || n != h.Size {
		return fail(fmt.Errorf("%w: snapshot shorter than %d bytes", ErrCorrupt, h.Size))
	}
	trailer, _ := br.ReadString('\n')
	got, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(trailer), "hmac-sha256:"))
	if err != nil || !strings.HasPrefix(trailer, "hmac-sha256:") || !anyMatch(sums, got) {
		return fail(fmt.Errorf("%w: its trailer is not the region's (another region's key, or edited)", ErrCorrupt))
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fail(fmt.Errorf("%w: data after the checksum", ErrCorrupt))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return h, tmp, nil
}

func anyMatch(sums []hash.Hash, got []byte) bool {
	ok := false
	for _, s := range sums {
		ok = hmac.Equal(s.Sum(nil), got) || ok
	}
	return ok
}

// Discard closes and removes the temporary file Open made.
func Discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}
