package backup

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// A backup reads back as written; a truncated, altered, lengthened or
// newer file is refused.
func TestBackupFile(t *testing.T) {
	snap := bytes.Repeat([]byte("state "), 1000)
	var buf bytes.Buffer
	if err := Write(&buf, Header{Region: "r1", RaftIndex: 42, Size: int64(len(snap))}, bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	h, f, err := Open(bytes.NewReader(good), t.TempDir())
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
	var newer bytes.Buffer
	Write(&newer, Header{Region: "r1", Size: int64(len(snap))}, bytes.NewReader(snap))
	newerFile := strings.Replace(newer.String(), `"version":1`, `"version":2`, 1)
	otherRegion := strings.Replace(string(good), `"region":"r1"`, `"region":"r2"`, 1)
	for name, data := range map[string][]byte{
		"truncated":     good[:len(good)-100],
		"altered":       altered,
		"lengthened":    append(bytes.Clone(good), 'x'),
		"not backup":    []byte("hello"),
		"no trailer":    good[:len(good)-72],
		"header edited": []byte(otherRegion),
	} {
		if _, _, err := Open(bytes.NewReader(data), t.TempDir()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	if _, _, err := Open(strings.NewReader(newerFile), t.TempDir()); err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "format 2") {
		t.Errorf("a newer format: %v", err)
	}
	if err := Write(io.Discard, Header{Size: 10}, strings.NewReader("short")); err == nil {
		t.Error("a snapshot shorter than its size was written")
	}
}
