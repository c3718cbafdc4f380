package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
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

// openLeader opens a node that bootstraps a region of its own and waits
// until it leads it.
func openLeader(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			n.Close(context.Background())
			t.Fatal("no leadership")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// openUnrecorded opens the leader of a new one-node region that does not
// record itself (Config.unrecorded), so that a test holds it in the moment
// before its record; it closes with the test.
func openUnrecorded(t *testing.T, change func(*Config)) (*Node, Config) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Bootstrap, cfg.unrecorded = true, true
	if change != nil {
		change(&cfg)
	}
	n := openLeader(t, cfg)
	t.Cleanup(func() { n.Close(context.Background()) })
	return n, cfg
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
	n := openLeader(t, cfg)
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.ID = "n2"
	if _, err := Open(context.Background(), other); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Fatalf("reopen as n2: %v", err)
	}
	again := openLeader(t, cfg) // the restarted single node leads again
	defer again.Close(context.Background())
}

// While a member runs a build that applies only version 1, the region
// proposes nothing newer: a version 2 command waits, then fails with
// ErrUpgradePending and changes nothing; version 1 commands go on; once the
// member reports the new version the command is proposed. A node whose
// build is older than what the region uses is refused at join, and
// admitted while the region uses what it knows.
func TestRollingUpgradeGate(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bootstrap = true
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for have, _ := n.fsm.Node(cfg.ID); have.GetCommandVersion() != command.Version; have, _ = n.fsm.Node(cfg.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the node never recorded its own command version")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := command.PutNode(ctx, n, &fsmpb.Node{Id: "old", RaftAddr: "127.0.0.9:1", HttpAddr: "127.0.0.9:2", CommandVersion: 1}); err != nil {
		t.Fatal(err)
	}
	if v := n.RegionVersion(); v != 1 {
		t.Fatalf("region version %d with an old member, want 1", v)
	}
	_, err = command.SetPolicy(ctx, n, &fsmpb.Policy{CodeTtlSeconds: 600})
	var pending *command.ErrUpgradePending
	if !errors.As(err, &pending) || pending.Need != 2 || pending.Region != 1 {
		t.Fatalf("SET_POLICY with an old member: %v, want ErrUpgradePending", err)
	}
	if _, set := n.FSM().Policy(); set {
		t.Fatal("a refused policy change was applied")
	}
	if err := command.PutNode(ctx, n, &fsmpb.Node{Id: "spare", RaftAddr: "127.0.0.9:3", HttpAddr: "127.0.0.9:4"}); err != nil {
		t.Fatalf("version 1 command with an old member: %v", err)
	}
	err = n.Join(ctx, JoinRequest{ID: "n9", RaftAddr: "127.0.0.9:5", HTTPAddr: "127.0.0.9:6", Region: "r1", CommandVersion: 1, DryRun: true})
	if err != nil {
		t.Fatalf("a version 1 build refused by a region that uses version 1: %v", err)
	}
	for _, id := range []string{"old", "spare"} {
		if err := command.PutNode(ctx, n, &fsmpb.Node{Id: id, RaftAddr: "127.0.0.9:1", HttpAddr: "127.0.0.9:2", CommandVersion: command.Version}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := command.SetPolicy(ctx, n, &fsmpb.Policy{CodeTtlSeconds: 600}); err != nil {
		t.Fatalf("SET_POLICY once every member is upgraded: %v", err)
	}
	err = n.Join(ctx, JoinRequest{ID: "n9", RaftAddr: "127.0.0.9:5", HTTPAddr: "127.0.0.9:6", Region: "r1", CommandVersion: 1, DryRun: true})
	var refused *MembershipError
	if !errors.As(err, &refused) || refused.Status != 409 {
		t.Fatalf("old build joining a version %d region: %v, want 409", command.Version, err)
	}
}

func TestExpireCutoff(t *testing.T) {
	const day = 24 * 60 * 60
	cases := []struct {
		now, retention, want int64
	}{
		{20*day + 3600, 14 * day, 6 * day},       // whole days
		{20*day + 86399, 14 * day, 6 * day},      // until the next midnight
		{20*day + 86400, 14 * day, 7 * day},      // then a whole day more
		{1000, 3, 996},                           // a short retention: its own multiples
		{20*day + 3600, day / 2, 19*day + day/2}, // half a day: half days
	}
	for _, c := range cases {
		if got := expireCutoff(c.now, c.retention); got != c.want {
			t.Errorf("expireCutoff(%d, %d) = %d, want %d", c.now, c.retention, got, c.want)
		}
	}
}

// The data dir is closed to other users, even if it existed before.
func TestDataDirMode(t *testing.T) {
	cfg := testConfig(t)
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Bootstrap = true
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	st, err := os.Stat(cfg.DataDir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
}
