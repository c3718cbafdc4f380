package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A secret file others may read stops the node at start.
func TestCheckSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("secret"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := &serveConfig{AdminTokenFile: write("token", 0o600), ExportKeyFiles: write("export.pem", 0o600), PoolKeyFile: write("pool", 0o400)}
	if err := checkSecrets(ok); err != nil {
		t.Fatalf("secrets of mode 0600 and 0400: %v", err)
	}
	for name, c := range map[string]*serveConfig{
		"admin token":   {AdminTokenFile: write("token-open", 0o644)},
		"export key":    {AdminTokenFile: ok.AdminTokenFile, ExportKeyFiles: ok.ExportKeyFiles + "," + write("export-open.pem", 0o640)},
		"signing key":   {SigningKeyFile: write("signing-open", 0o604)},
		"pool key file": {PoolKeyFile: write("pool-open", 0o660)},
	} {
		if err := checkSecrets(c); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("%s readable by others: %v", name, err)
		}
	}
	if err := checkSecrets(&serveConfig{AdminTokenFile: filepath.Join(dir, "not-yet")}); err != nil {
		t.Fatalf("a token file still to be created: %v", err)
	}
}
