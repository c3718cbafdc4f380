package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Settings come from the config file unless the command line sets them.
func TestParseServeFlagsWinOverFile(t *testing.T) {
	file := writeConfig(t, `{"node-id": "from-file", "region": "r1", "data-dir": "/tmp/x",
		"bootstrap": true, "snapshot-interval": "30s", "snapshot-threshold": 100, "http-addr": "127.0.0.9:9000"}`)
	c, err := parseServe([]string{"--config", file, "--node-id", "from-flag", "--snapshot-threshold", "7"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"node-id", c.NodeID, "from-flag"},
		{"region", c.Region, "r1"},
		{"bootstrap", c.Bootstrap, true},
		{"snapshot-interval", c.SnapshotInterval, 30 * time.Second},
		{"snapshot-threshold", c.SnapshotThreshold, uint64(7)},
		{"http-addr", c.HTTPAddr, "127.0.0.9:9000"},
		{"raft-addr (default)", c.RaftAddr, "127.0.0.1:7000"},
		{"admin-token-file (default)", c.AdminTokenFile, "/tmp/x/admin-token"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// A malformed config is an error that names the problem.
func TestParseServeBadConfig(t *testing.T) {
	cases := []struct {
		name, body string
		args       []string
		want       string
	}{
		{"not json", `{"node-id": `, nil, "config file"},
		{"unknown setting", `{"node-id": "a", "colour": "blue"}`, nil, `unknown setting "colour"`},
		{"bad duration", `{"snapshot-interval": "soon"}`, nil, "snapshot-interval"},
		{"bad bool", `{"bootstrap": "perhaps"}`, nil, "bootstrap"},
		{"missing required", `{"node-id": "a"}`, nil, "--region is required"},
		{"stray argument", `{}`, []string{"extra"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--config", writeConfig(t, tc.body)}, tc.args...)
			_, err := parseServe(args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// The admin token file is created with a random token, mode 0600, and
// read back unchanged; a too-short token is refused.
func TestLoadOrCreateToken(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "token")
	tok, err := loadOrCreateToken(p)
	if err != nil || len(tok) != 64 {
		t.Fatalf("create: %q %v", tok, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v %v", fi.Mode(), err)
	}
	again, err := loadOrCreateToken(p)
	if err != nil || again != tok {
		t.Fatalf("reload gave %q %v", again, err)
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	if _, err := loadOrCreateToken(short); err == nil {
		t.Fatal("a 3-character token was accepted")
	}
}
