package fsm_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

type member struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	fsm   *fsm.FSM
	raft  *raft.Raft
}

func testRaftConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	// Snapshots only when the test asks for one.
	c.SnapshotInterval = time.Hour
	c.SnapshotThreshold = 1 << 40
	c.TrailingLogs = 4
	c.BatchApplyCh = true
	c.LogOutput = io.Discard
	return c
}

// newMember creates a raft node over an in-memory transport; with servers
// set it bootstraps that configuration first.
func newMember(t *testing.T, id string, servers []raft.Server) *member {
	t.Helper()
	m := &member{id: raft.ServerID(id), fsm: fsm.New()}
	m.addr, m.trans = raft.NewInmemTransport(raft.ServerAddress(id))
	conf := testRaftConfig(m.id)
	store := raft.NewInmemStore()
	snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if servers != nil {
		if err := raft.BootstrapCluster(conf, store, store, snaps, m.trans, raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
	}
	m.raft, err = raft.NewRaft(conf, m.fsm, store, store, snaps, m.trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.raft.Shutdown().Error(); err != nil {
			t.Errorf("shutdown %s: %v", id, err)
		}
	})
	return m
}

func connect(ms ...*member) {
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func raftApply(t *testing.T, leader *member, cmd *fsmpb.Command) response {
	t.Helper()
	fut := leader.raft.Apply(mustEncode(t, cmd), 5*time.Second)
	if err := fut.Error(); err != nil {
		t.Fatalf("raft Apply %v: %v", cmd.GetType(), err)
	}
	return toResponse(t, fut.Response())
}

func TestRaftCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raft cluster")
	}
	var servers []raft.Server
	for _, id := range []string{"n1", "n2", "n3"} {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	var ms []*member
	for _, s := range servers {
		ms = append(ms, newMember(t, string(s.ID), servers))
	}
	connect(ms...)

	var leader *member
	waitFor(t, "a leader", 10*time.Second, func() bool {
		for _, m := range ms {
			if m.raft.State() == raft.Leader {
				leader = m
				return true
			}
		}
		return false
	})
	var follower *member
	for _, m := range ms {
		if m != leader {
			follower = m
			break
		}
	}

	for _, m := range ms {
		if r := raftApply(t, leader, putNode(string(m.id), string(m.addr), "http://"+string(m.id))); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if r := raftApply(t, leader, putAuthority("https://ha.example.org", "aud", []string{"app"}, akey("k1", 0, 0))); r.Err != nil {
		t.Fatal(r.Err)
	}
	// Many publishes in flight at once, so raft hands the FSM batches.
	const subs = 60
	var futs []raft.ApplyFuture
	for i := range subs {
		n := uint64(i)
		futs = append(futs, leader.raft.Apply(mustEncode(t, publish(n, now+int64(i), keysFrom(n*14, 14)...)), 5*time.Second))
	}
	for i, fut := range futs {
		if err := fut.Error(); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		want := &fsmpb.PublishResult{Inserted: 14, Submission: uint32(i)}
		if got := toResponse(t, fut.Response()); !proto.Equal(got.GetPublish(), want) {
			t.Fatalf("publish %d: response %v, want %v", i, got, want)
		}
	}
	if r := raftApply(t, leader, publish(3, now, keysFrom(3*14, 14)...)); r.Err != nil ||
		!proto.Equal(r.GetPublish(), &fsmpb.PublishResult{Inserted: 14, Submission: 3, Replayed: true}) {
		t.Fatalf("replay through raft: %#v", r)
	}
	if r := raftApply(t, leader, publish(10_000, now, pkey(99_999), pkey(5))); codeOf(r.Err) != command.CodeKeyExists {
		t.Fatalf("clashing publish through raft: %#v, want %s", r, command.CodeKeyExists)
	}

	const wantKeys = subs * 14
	if leader.fsm.NumKeys() != wantKeys {
		t.Fatalf("leader holds %d keys, want %d", leader.fsm.NumKeys(), wantKeys)
	}
	same := func(ms ...*member) func() bool {
		return func() bool {
			want := snapshotBytes(t, leader.fsm)
			for _, m := range ms {
				if !bytes.Equal(snapshotBytes(t, m.fsm), want) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "every FSM to hold the leader's state", 10*time.Second, same(ms...))
	for _, m := range ms {
		if d := diffViews(viewOf(m.fsm), viewOf(leader.fsm)); d != "" {
			t.Fatalf("%s differs from the leader: %s", m.id, d)
		}
		if len(m.fsm.Nodes()) != 3 || len(m.fsm.Authorities()) != 1 {
			t.Fatalf("%s: nodes %v authorities %v", m.id, m.fsm.Nodes(), m.fsm.Authorities())
		}
	}

	// A snapshot forced on a follower restores into an equal FSM.
	sf := follower.raft.Snapshot()
	if err := sf.Error(); err != nil {
		t.Fatalf("snapshot on follower %s: %v", follower.id, err)
	}
	meta, rc, err := sf.Open()
	if err != nil {
		t.Fatal(err)
	}
	if meta.Index == 0 || meta.Size == 0 {
		t.Fatalf("snapshot meta %+v", meta)
	}
	fresh := fsm.New()
	if err := fresh.Restore(rc); err != nil {
		t.Fatalf("restore the follower's snapshot: %v", err)
	}
	if d := diffViews(viewOf(fresh), viewOf(follower.fsm)); d != "" {
		t.Fatalf("restored FSM differs from the follower: %s", d)
	}
	if !bytes.Equal(snapshotBytes(t, fresh), snapshotBytes(t, follower.fsm)) {
		t.Fatal("restored FSM snapshots to other bytes than the follower")
	}

	// A new member joining after the leader compacted its log gets the
	// state through InstallSnapshot, i.e. through FSM.Restore.
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot on leader: %v", err)
	}
	for i := subs; i < subs+5; i++ {
		n := uint64(i)
		if r := raftApply(t, leader, publish(n, now, keysFrom(n*14, 14)...)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if leader.raft.Stats()["last_snapshot_index"] == "0" {
		t.Fatal("leader has no snapshot")
	}
	joiner := newMember(t, "n4", nil)
	connect(append(ms, joiner)...)
	if err := leader.raft.AddNonvoter(joiner.id, joiner.addr, 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("add n4: %v", err)
	}
	waitFor(t, "the new member to catch up", 10*time.Second, same(append(ms, joiner)...))
	if joiner.raft.Stats()["last_snapshot_index"] == "0" {
		t.Error("n4 caught up without installing a snapshot")
	}
	if joiner.fsm.NumKeys() != (subs+5)*14 {
		t.Fatalf("n4 holds %d keys, want %d", joiner.fsm.NumKeys(), (subs+5)*14)
	}
}
