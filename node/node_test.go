package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testConfig(t *testing.T) Config {
	return Config{
		ID: "n1", Region: "r1", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		AdminToken: "token", WriteTimeout: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"bad id", func(c *Config) { c.ID = "no spaces" }, "node id"},
		{"bad region", func(c *Config) { c.Region = "" }, "region"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"unspecified raft host", func(c *Config) { c.RaftAddr = ":7000" }, "raft address"},
		{"port zero", func(c *Config) { c.HTTPAddr = "127.0.0.1:0" }, "fixed port"},
		{"bootstrap and join", func(c *Config) { c.Bootstrap, c.Join = true, []string{"http://x"} }, "exclude"},
		{"no token", func(c *Config) { c.AdminToken = "" }, "admin token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Without a leader a write waits for the write timeout, then fails with
// ErrNoLeader (the API answers 503 with Retry-After).
func TestApplyWithoutLeaderTimesOut(t *testing.T) {
	n, err := Open(context.Background(), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	start := time.Now()
	_, err = n.Apply(context.Background(), &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_NODE, RemoveNode: &fsmpb.RemoveNode{Id: "x"}})
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("err = %v, want ErrNoLeader", err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("gave up after %v, before the write timeout", waited)
	}
}

// A data dir remembers its node id and region; a restart with others is
// refused before raft opens it.
func TestDataDirIdentity(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bootstrap = true
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leadership")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.ID = "n2"
	if _, err := Open(context.Background(), other); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Fatalf("reopen as n2: %v", err)
	}
	again, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("reopen as n1: %v", err)
	}
	defer again.Close(context.Background())
	deadline = time.Now().Add(10 * time.Second)
	for !again.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("restarted single node did not lead again")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
