package fsm_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyAll applies logs, going past entries that would stop a node (the
// mixed log holds undecodable ones).
func applyAll(tb testing.TB, f *fsm.FSM, logs []*raft.Log) {
	tb.Helper()
	f.SetHalt(func(error) {})
	for _, l := range logs {
		f.Apply(l)
	}
}

// richState returns an FSM holding authorities, nodes, submissions with every
// field set and keys with every field value at the limits.
func richState(tb testing.TB) *fsm.FSM { return richStateN(tb, 60) }

// richStateN is richState with n publishes of the mixed log.
func richStateN(tb testing.TB, n int) *fsm.FSM {
	tb.Helper()
	f := fsm.New()
	applyAll(tb, f, mixedLog(tb, n))
	mustApply(tb, f, putAuthority("https://b.example", "aud-b", []string{"b.1", "b.2"}, akey("x", 1, 5), akey("y", 2, 6)))
	mustApply(tb, f, putNode("n7", "10.0.0.7:7000", "10.0.0.7:8080"))
	mustApply(tb, f, publish(900_000, now, &fsmpb.Key{
		KeyData: tekBytes(900_000), RollingStart: 1<<31 - 1, RollingPeriod: fsm.MaxRollingPeriod,
		TransmissionRisk: fsm.MaxTransmissionRisk, ReportType: fsm.MaxReportType,
		HasDaysSinceOnset: true, DaysSinceOnset: -fsm.MaxDaysSinceOnset,
	}, &fsmpb.Key{KeyData: make([]byte, 16), RollingPeriod: 1}))
	return f
}

func TestSnapshotDeterminism(t *testing.T) {
	logs := mixedLog(t, 300)

	a := fsm.New()
	applyAll(t, a, logs)
	want := snapshotBytes(t, a)
	if a.NumKeys() < 1000 {
		t.Fatalf("only %d keys: the test needs enough for map order to vary", a.NumKeys())
	}

	t.Run("same FSM snapshotted again", func(t *testing.T) {
		for range 5 {
			if !bytes.Equal(snapshotBytes(t, a), want) {
				t.Fatal("two snapshots of the same state differ")
			}
		}
	})
	t.Run("second FSM via ApplyBatch", func(t *testing.T) {
		b := fsm.New()
		b.SetHalt(func(error) {})
		for chunk := range slices.Chunk(logs, 5) {
			b.ApplyBatch(chunk)
		}
		if !bytes.Equal(snapshotBytes(t, b), want) {
			t.Fatal("same log, different snapshot bytes")
		}
	})
	t.Run("restored mid-log then rest of log", func(t *testing.T) {
		half := len(logs) / 2
		src := fsm.New()
		applyAll(t, src, logs[:half])
		c := fsm.New()
		if err := restoreBytes(c, snapshotBytes(t, src)); err != nil {
			t.Fatal(err)
		}
		applyAll(t, c, logs[half:])
		if !bytes.Equal(snapshotBytes(t, c), want) {
			t.Fatal("snapshot + rest of log differs from the whole log")
		}
	})
	t.Run("restored copy", func(t *testing.T) {
		d := fsm.New()
		if err := restoreBytes(d, want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snapshotBytes(t, d), want) {
			t.Fatal("restored state snapshots to other bytes")
		}
	})
	t.Run("members and authorities added in another order", func(t *testing.T) {
		var pubs []*fsmpb.Command
		for i := range 200 {
			pubs = append(pubs, publish(uint64(i), now+int64(i), keysFrom(uint64(i)*14, 14)...))
		}
		x := []*fsmpb.Command{
			putNode("n1", "r1", "h1"), putNode("n2", "r2", "h2"), putNode("n3", "r3", "h3"),
			putAuthority("https://a", "aud", []string{"app1", "app2"}, akey("k1", 0, 0), akey("k2", 1, 0)),
			putAuthority("https://b", "aud", []string{"app3"}, akey("k1", 2, 0)),
		}
		x = append(x, pubs...)
		y := []*fsmpb.Command{
			putAuthority("https://b", "aud", []string{"app3"}, akey("k1", 2, 0)),
			putNode("n3", "r3", "h3"), putNode("n4", "r4", "h4"),
			putAuthority("https://a", "aud", []string{"app1", "app2"}, akey("k2", 1, 0)),
		}
		y = append(y, pubs[:100]...)
		y = append(y,
			putAuthority("https://a", "aud", []string{"app1", "app2"}, akey("k1", 0, 0)),
			putNode("n2", "old", "old"), putNode("n1", "r1", "h1"))
		y = append(y, pubs[100:]...)
		y = append(y, removeNode("n4"), putNode("n2", "r2", "h2"))
		fx, fy := fsm.New(), fsm.New()
		for _, c := range x {
			mustApply(t, fx, c)
		}
		for _, c := range y {
			mustApply(t, fy, c)
		}
		if d := diffViews(viewOf(fx), viewOf(fy)); d != "" {
			t.Fatalf("states differ: %s", d)
		}
		if !bytes.Equal(snapshotBytes(t, fx), snapshotBytes(t, fy)) {
			t.Fatal("equal states, different snapshot bytes")
		}
	})
}

// readRecords splits a snapshot into its header and records.
func readRecords(t *testing.T, b []byte) (*fsmpb.SnapshotHeader, []*fsmpb.Authority, []*fsmpb.Node, []*fsmpb.Submission, []*fsmpb.StoredKey) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	get := func(m proto.Message) {
		t.Helper()
		if err := protodelim.UnmarshalFrom(r, m); err != nil {
			t.Fatalf("read %T: %v", m, err)
		}
	}
	hdr := &fsmpb.SnapshotHeader{}
	get(hdr)
	var (
		auths []*fsmpb.Authority
		nodes []*fsmpb.Node
		subs  []*fsmpb.Submission
		keys  []*fsmpb.StoredKey
	)
	for range hdr.Authorities {
		m := &fsmpb.Authority{}
		get(m)
		auths = append(auths, m)
	}
	for range hdr.Nodes {
		m := &fsmpb.Node{}
		get(m)
		nodes = append(nodes, m)
	}
	for range hdr.Submissions {
		m := &fsmpb.Submission{}
		get(m)
		subs = append(subs, m)
	}
	for range hdr.Keys {
		m := &fsmpb.StoredKey{}
		get(m)
		keys = append(keys, m)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("data after the last record (err %v)", err)
	}
	return hdr, auths, nodes, subs, keys
}

func TestSnapshotFormat(t *testing.T) {
	f := richState(t)
	v := viewOf(f)
	hdr, auths, nodes, subs, keys := readRecords(t, snapshotBytes(t, f))
	if hdr.Version != fsm.SnapshotVersion {
		t.Errorf("header version %d, want %d", hdr.Version, fsm.SnapshotVersion)
	}
	if int(hdr.Authorities) != len(v.Authorities) || int(hdr.Nodes) != len(v.Nodes) ||
		int(hdr.Submissions) != len(v.Submissions) || int(hdr.Keys) != len(v.Keys) {
		t.Fatalf("header %v, state has %d authorities %d nodes %d submissions %d keys",
			hdr, len(v.Authorities), len(v.Nodes), len(v.Submissions), len(v.Keys))
	}
	for i, a := range auths {
		if !proto.Equal(a, v.Authorities[i]) {
			t.Errorf("authority record %d = %v, want %v", i, a, v.Authorities[i])
		}
	}
	for i, n := range nodes {
		if !proto.Equal(n, v.Nodes[i]) {
			t.Errorf("node record %d = %v, want %v", i, n, v.Nodes[i])
		}
	}
	for i, s := range subs {
		w := v.Submissions[i]
		if !bytes.Equal(s.Id, w.ID[:]) || s.TimeUnix != w.TimeUnix || s.AppId != w.AppID || s.Issuer != w.Issuer ||
			!bytes.Equal(s.CertificateDigest, w.CertificateDigest) || s.Traveler != w.Traveler || s.KeyCount != w.KeyCount {
			t.Errorf("submission record %d = %v, want %+v", i, s, w)
		}
	}
	for i, k := range keys {
		if i > 0 && bytes.Compare(keys[i-1].Key.KeyData, k.Key.KeyData) >= 0 {
			t.Fatalf("key records %d and %d are not in ascending order", i-1, i)
		}
		if !proto.Equal(k.Key, v.Keys[i].Proto()) || k.Submission != v.Keys[i].Submission {
			t.Errorf("key record %d = %v, want %+v", i, k, v.Keys[i])
		}
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	for name, build := range map[string]func(testing.TB) *fsm.FSM{
		"empty": func(testing.TB) *fsm.FSM { return fsm.New() },
		"rich":  richState,
	} {
		t.Run(name, func(t *testing.T) {
			for into, target := range map[string]*fsm.FSM{"fresh": fsm.New(), "non-empty": richOther(t)} {
				t.Run(into, func(t *testing.T) {
					orig := build(t)
					want := viewOf(orig)
					snap := snapshotBytes(t, orig)
					rc := &closeTracker{Reader: bytes.NewReader(snap)}
					if err := target.Restore(rc); err != nil {
						t.Fatalf("Restore: %v", err)
					}
					if !rc.closed {
						t.Error("Restore did not close its reader")
					}
					if d := diffViews(viewOf(target), want); d != "" {
						t.Fatalf("restored state differs: %s", d)
					}
					if target.NumKeys() != orig.NumKeys() {
						t.Fatalf("NumKeys %d, want %d", target.NumKeys(), orig.NumKeys())
					}
					for _, a := range want.Authorities {
						if !target.AppKnown(a.AppIds[0]) {
							t.Errorf("AppKnown(%q) = false after restore", a.AppIds[0])
						}
					}
					if !bytes.Equal(snapshotBytes(t, target), snap) {
						t.Fatal("restored state snapshots to other bytes")
					}
					// The indexes are rebuilt: both FSMs answer the next commands alike.
					next := []*fsmpb.Command{publish(999_999, now, pkey(5_000_000)), putNode("n8", "r", "h")}
					for _, s := range want.Submissions {
						next = append(next, publish(0, now, pkey(0)))
						next[len(next)-1].Publish.SubmissionId = s.ID[:]
					}
					for _, k := range want.Keys[:min(len(want.Keys), 20)] {
						next = append(next, publish(888_888, now, pkey(6_000_000), k.Proto()))
					}
					for _, c := range next {
						enc := mustEncode(t, c)
						a, b := describe(orig.Apply(logEntry(1, enc))), describe(target.Apply(logEntry(1, enc)))
						if a != b {
							t.Fatalf("after restore %s, original %s", b, a)
						}
					}
					if !bytes.Equal(snapshotBytes(t, orig), snapshotBytes(t, target)) {
						t.Fatal("original and restored FSMs diverge on the same commands")
					}
				})
			}
		})
	}
}

// richOther is a state unlike richState, to restore over.
func richOther(tb testing.TB) *fsm.FSM {
	f := fsm.New()
	mustApply(tb, f, putNode("other", "r", "h"))
	mustApply(tb, f, putAuthority("https://other", "aud", []string{"other"}, akey("k", 3, 0)))
	mustApply(tb, f, publish(42, now, keysFrom(7_000_000, 5)...))
	return f
}

// stream encodes messages as a snapshot would.
func stream(tb testing.TB, msgs ...proto.Message) []byte {
	var buf bytes.Buffer
	for _, m := range msgs {
		if _, err := protodelim.MarshalTo(&buf, m); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestRestoreRejects(t *testing.T) {
	good := snapshotBytes(t, richStateN(t, 8))
	hdr, auths, nodes, subs, keys := readRecords(t, good)
	// rebuild returns the good snapshot with the header and records changed.
	rebuild := func(editHdr func(*fsmpb.SnapshotHeader), edit func(subs []*fsmpb.Submission, keys []*fsmpb.StoredKey)) []byte {
		h := proto.CloneOf(hdr)
		if editHdr != nil {
			editHdr(h)
		}
		s := make([]*fsmpb.Submission, len(subs))
		for i := range subs {
			s[i] = proto.CloneOf(subs[i])
		}
		k := make([]*fsmpb.StoredKey, len(keys))
		for i := range keys {
			k[i] = proto.CloneOf(keys[i])
		}
		if edit != nil {
			edit(s, k)
		}
		msgs := []proto.Message{h}
		for _, m := range auths {
			msgs = append(msgs, m)
		}
		for _, m := range nodes {
			msgs = append(msgs, m)
		}
		for _, m := range s {
			msgs = append(msgs, m)
		}
		for _, m := range k {
			msgs = append(msgs, m)
		}
		return stream(t, msgs...)
	}
	if !bytes.Equal(rebuild(nil, nil), good) {
		t.Fatal("rebuild of the unchanged snapshot differs from it")
	}
	last := len(keys) - 1
	huge := uint64(1) << 40

	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("this is not a snapshot at all")},
		{"header only", stream(t, hdr)},
		{"trailing byte", append(slices.Clone(good), 0)},
		{"trailing record", append(slices.Clone(good), stream(t, keys[0])...)},
		{"future version", rebuild(func(h *fsmpb.SnapshotHeader) { h.Version = fsm.SnapshotVersion + 1 }, nil)},
		{"far future version", rebuild(func(h *fsmpb.SnapshotHeader) { h.Version = 1<<32 - 1 }, nil)},
		{"version 0", rebuild(func(h *fsmpb.SnapshotHeader) { h.Version = 0 }, nil)},
		{"one key more announced", rebuild(func(h *fsmpb.SnapshotHeader) { h.Keys++ }, nil)},
		{"one key less announced", rebuild(func(h *fsmpb.SnapshotHeader) { h.Keys-- }, nil)},
		{"one node more announced", rebuild(func(h *fsmpb.SnapshotHeader) { h.Nodes++ }, nil)},
		{"keys out of order", rebuild(nil, func(_ []*fsmpb.Submission, k []*fsmpb.StoredKey) { k[0], k[1] = k[1], k[0] })},
		{"duplicate key", rebuild(nil, func(_ []*fsmpb.Submission, k []*fsmpb.StoredKey) { k[1].Key.KeyData = k[0].GetKey().GetKeyData() })},
		{"huge key count", rebuild(func(h *fsmpb.SnapshotHeader) { h.Keys = huge }, nil)},
		{"huge submission count", rebuild(func(h *fsmpb.SnapshotHeader) { h.Submissions = huge }, nil)},
		{"maximal counts", rebuild(func(h *fsmpb.SnapshotHeader) {
			h.Authorities, h.Nodes, h.Submissions, h.Keys = 1<<64-1, 1<<64-1, 1<<64-1, 1<<64-1
		}, nil)},
		{"key of 15 bytes", rebuild(nil, func(_ []*fsmpb.Submission, k []*fsmpb.StoredKey) { k[last].Key.KeyData = k[last].Key.KeyData[:15] })},
		{"key without data", rebuild(nil, func(_ []*fsmpb.Submission, k []*fsmpb.StoredKey) { k[0].Key = nil })},
		{"rolling period out of range", rebuild(nil, func(_ []*fsmpb.Submission, k []*fsmpb.StoredKey) { k[3].Key.RollingPeriod = 200 })},
		{"key of unknown submission", rebuild(nil, func(s []*fsmpb.Submission, k []*fsmpb.StoredKey) { k[last].Submission = uint32(len(s)) })},
		{"submission id of 15 bytes", rebuild(nil, func(s []*fsmpb.Submission, _ []*fsmpb.StoredKey) { s[1].Id = s[1].Id[:15] })},
		{"record over the size limit", append(stream(t, &fsmpb.SnapshotHeader{Version: 1, Authorities: 1}), 0x80, 0x80, 0x80, 0x10)},
	}
	for i := range len(good) {
		cases = append(cases, struct {
			name string
			data []byte
		}{"truncated to " + itoa(i), good[:i]})
	}

	f := richOther(t)
	before := freeze(t, f)
	for _, c := range cases {
		err := restoreBytes(f, c.data)
		if err == nil {
			t.Errorf("%s: Restore accepted it", c.name)
			f = richOther(t)
			continue
		}
		if testing.Verbose() && !bytes.HasPrefix([]byte(c.name), []byte("truncated")) {
			t.Logf("%s: %v", c.name, err)
		}
		if d := diffViews(before.v, viewOf(f)); d != "" {
			t.Fatalf("%s: refused snapshot changed the state: %s", c.name, d)
		}
	}
	assertUnchanged(t, f, before)
}

// TestRestoreCorruptedBytes flips every byte of a snapshot in turn. Restore
// must never panic; when it refuses, the state must be unchanged. Some flips
// (inside key bytes, say) give another valid snapshot: the snapshot has no
// checksum of its own and relies on raft's snapshot store for that.
func TestRestoreCorruptedBytes(t *testing.T) {
	good := snapshotBytes(t, richStateN(t, 8))
	f := richOther(t)
	before := freeze(t, f)
	var refused, accepted int
	for i := range good {
		for _, mask := range []byte{0xff, 0x01} {
			bad := slices.Clone(good)
			bad[i] ^= mask
			if err := restoreBytes(f, bad); err != nil {
				refused++
				if d := diffViews(before.v, viewOf(f)); d != "" {
					t.Fatalf("byte %d ^ %#x: refused snapshot changed the state: %s", i, mask, d)
				}
				continue
			}
			accepted++
			f = richOther(t)
		}
	}
	assertUnchanged(t, f, before)
	t.Logf("%d bytes x 2 flips: %d refused, %d gave another valid state", len(good), refused, accepted)
	if refused == 0 {
		t.Error("no corruption was detected")
	}
}

// failingSink fails every write after the first n bytes.
type failingSink struct {
	memSink
	n int
}

func (s *failingSink) Write(p []byte) (int, error) {
	if s.Len()+len(p) > s.n {
		return 0, errors.New("disk full")
	}
	return s.memSink.Write(p)
}

func TestPersistFailureCancelsSink(t *testing.T) {
	f := richState(t)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &failingSink{n: 10}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist into a failing sink returned nil")
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink cancelled=%v closed=%v, want cancelled and not closed", sink.cancelled, sink.closed)
	}
}

// TestSnapshotIsolation checks that a snapshot holds the state of the moment
// Snapshot was called, while Apply goes on during Persist.
func TestSnapshotIsolation(t *testing.T) {
	f := richState(t)
	want := snapshotBytes(t, f)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()

	later := []*fsmpb.Command{
		putNode("n7", "changed", "changed"), removeNode("n1"),
		putAuthority("https://b.example", "aud-c", []string{"c"}, akey("z", 3, 0)),
		removeAuthority("https://b.example", "x"),
		removeAuthority("https://ha.example.org", ""),
	}
	for i := range 200 {
		later = append(later, publish(uint64(2_000_000+i), now, keysFrom(uint64(3_000_000+i*14), 14)...))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, c := range later {
			f.Apply(logEntry(1, mustEncode(t, c)))
		}
	})
	var sink memSink
	err = snap.Persist(&sink)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatal("snapshot bytes include changes applied after Snapshot")
	}
	if bytes.Equal(snapshotBytes(t, f), want) {
		t.Fatal("the later commands changed nothing: test is void")
	}
}
