package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// certs ca never replaces a CA: not with its key in place, and not once
// the key has been moved offline as its own output asks (it overwrote
// ca.pem then, splitting the region).
func TestCertsCANeverReplaced(t *testing.T) {
	dir := t.TempDir()
	if err := certs([]string{"ca", "--dir", dir, "--region", "r1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err := certs([]string{"ca", "--dir", dir, "--region", "r1"}, io.Discard); err == nil {
		t.Fatal("a second CA over the first was made")
	}
	if err := os.Rename(filepath.Join(dir, "ca.key"), filepath.Join(t.TempDir(), "ca.key")); err != nil {
		t.Fatal(err)
	}
	err := certs([]string{"ca", "--dir", dir, "--region", "r1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a CA over one whose key is offline: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(now, pem) {
		t.Fatal("ca.pem was replaced")
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); err == nil {
		t.Fatal("a new ca.key was left beside the old ca.pem")
	}
}
