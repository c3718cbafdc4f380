// Package backup is the format of a region's backup file: a magic line, a
// JSON header (region, raft position, formats, key ids), the state
// machine's snapshot exactly as raft stores it, and a SHA-256 trailer over
// all of it, so that a truncated or altered file is refused before
// anything is restored.
// Secrets are not in it: codes and tokens are kept as hashes, and keys live
// in their own files.
package backup

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Magic starts every backup file; Version is the format of what follows.
const (
	Magic   = "covid-backend backup\n"
	Version = 1
)

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
// bytes) and the checksum trailer.
func Write(w io.Writer, h Header, snapshot io.Reader) error {
	h.Version = Version
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	sum := sha256.New()
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
	_, err = fmt.Fprintf(w, "sha256:%x\n", sum.Sum(nil))
	return err
}

// ErrCorrupt means a file is not a whole, unaltered backup.
var ErrCorrupt = errors.New("not a whole backup file (truncated or altered)")

// Open reads a backup into a temporary file in dir, checking its
// checksum, and returns its header and the verified snapshot, read from
// its start; the caller ends with Discard.
func Open(r io.Reader, dir string) (Header, *os.File, error) {
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
	if h.Version != Version {
		return Header{}, nil, fmt.Errorf("backup format %d; this build reads %d", h.Version, Version)
	}
	sum := sha256.New()
	sum.Write(magic)
	sum.Write([]byte(line))
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
	if strings.TrimSpace(trailer) != "sha256:"+hex.EncodeToString(sum.Sum(nil)) {
		return fail(fmt.Errorf("%w: checksum", ErrCorrupt))
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fail(fmt.Errorf("%w: data after the checksum", ErrCorrupt))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return h, tmp, nil
}

// Discard closes and removes the temporary file Open made.
func Discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}
