package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// keygen --age writes an identity file only its owner reads, which age
// (and restore --identity) reads back, and prints the recipient that
// belongs to it, for backup --recipient.
func TestKeygenAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "operators.agekey")
	var out bytes.Buffer
	if err := keygen([]string{"--age", "--out", path}, &out); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v, mode %v", err, st.Mode())
	}
	ids, err := readIdentities(path)
	if err != nil || len(ids) != 1 {
		t.Fatalf("read back: %d identities, %v", len(ids), err)
	}
	want := ids[0].(*age.X25519Identity).Recipient().String()
	if !strings.Contains(out.String(), "recipient: "+want) {
		t.Fatalf("printed %q, want the recipient %s", out.String(), want)
	}
	if err := keygen([]string{"--age", "--out", path}, &out); err == nil {
		t.Fatal("an existing identity file was overwritten")
	}
}
