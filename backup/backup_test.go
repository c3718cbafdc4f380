package backup

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
)

// A backup reads back as written; a truncated, altered, lengthened,
// newer or unauthenticated file, or one under another region's key, is
// refused (issue 21, finding 9: an edited backup with its checksum
// recomputed restored).
func TestBackupFile(t *testing.T) {
	snap := bytes.Repeat([]byte("state "), 1000)
	key, other := Key([]byte("region secret")), Key([]byte("another region"))
	keys := [][]byte{other, key} // a rotation: the second opens it
	var buf bytes.Buffer
	if err := Write(&buf, Header{Region: "r1", RaftIndex: 42, Size: int64(len(snap))}, bytes.NewReader(snap), key); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	h, f, err := Open(bytes.NewReader(good), t.TempDir(), keys)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	Discard(f)
	if h.Region != "r1" || h.RaftIndex != 42 || !bytes.Equal(got, snap) {
		t.Fatalf("read back %+v, %d bytes", h, len(got))
	}
	altered := bytes.Clone(good)
	altered[len(good)/2] ^= 1
	var newer, forged bytes.Buffer
	Write(&newer, Header{Region: "r1", Size: int64(len(snap))}, bytes.NewReader(snap), key)
	newerFile := strings.Replace(newer.String(), `"version":2`, `"version":3`, 1)
	oldFile := strings.Replace(newer.String(), `"version":2`, `"version":1`, 1)
	Write(&forged, Header{Region: "r1", Size: int64(len(snap))}, bytes.NewReader(snap), Key([]byte("a guess")))
	otherRegion := strings.Replace(string(good), `"region":"r1"`, `"region":"r2"`, 1)
	for name, data := range map[string][]byte{
		"truncated":     good[:len(good)-100],
		"altered":       altered,
		"lengthened":    append(bytes.Clone(good), 'x'),
		"not backup":    []byte("hello"),
		"no trailer":    good[:len(good)-72],
		"header edited": []byte(otherRegion),
		"forged":        forged.Bytes(),
	} {
		if _, _, err := Open(bytes.NewReader(data), t.TempDir(), keys); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	if _, _, err := Open(strings.NewReader(newerFile), t.TempDir(), keys); err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "format 3") {
		t.Errorf("a newer format: %v", err)
	}
	if _, _, err := Open(strings.NewReader(oldFile), t.TempDir(), keys); err == nil || !strings.Contains(err.Error(), "no authenticated trailer") {
		t.Errorf("format 1: %v", err)
	}
	if err := Write(io.Discard, Header{Size: 10}, strings.NewReader("short"), key); err == nil {
		t.Error("a snapshot shorter than its size was written")
	}
}

// A sealed backup opens only with an identity of its recipients.
func TestSealedBackup(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := age.GenerateX25519Identity()
	recipients, err := ParseRecipients(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	w, err := Seal(&sealed, recipients)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "portal account hashes")
	w.Close()
	if bytes.Contains(sealed.Bytes(), []byte("portal")) {
		t.Fatal("the sealed file holds its content in clear")
	}
	if _, err := Unseal(bytes.NewReader(sealed.Bytes()), []age.Identity{stranger}); err == nil {
		t.Fatal("another identity opened it")
	}
	r, err := Unseal(bytes.NewReader(sealed.Bytes()), []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); string(got) != "portal account hashes" {
		t.Fatalf("unsealed %q", got)
	}
	if _, err := ParseRecipients(" , "); err == nil {
		t.Fatal("no recipient accepted")
	}
}
