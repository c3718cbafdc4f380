package federation

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/covid-backend/covid-backend/federation/fedpb"
)

func testPool() *Pool {
	return &Pool{cfg: Config{Region: "B", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		seen: map[string]time.Time{}, remote: map[string]*remoteMark{}, rejected: map[string]int{}, wake: make(chan struct{}, 1),
		isTrusted: func(origin string) bool { return origin == "A" },
		queue:     &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 3 }, RetransmitMult: 1}}
}

// Gossip that does not decode is dropped; a new announcement is noted and
// re-broadcast once; announcements of the node's own region are ignored.
func TestNotifyMsg(t *testing.T) {
	p := testPool()
	d := (*delegate)(p)
	d.NotifyMsg([]byte{0xff, 0x01, 0x02})
	d.NotifyMsg(nil)
	if len(p.remote) != 0 || p.queue.NumQueued() != 0 {
		t.Fatal("garbage gossip changed the pool")
	}
	a := encode(&fedpb.Announcement{Mark: &fedpb.Mark{Origin: "A", First: 1, Last: 4, Digest: []byte{1}}, HolderUrl: "http://a"})
	d.NotifyMsg(a)
	d.NotifyMsg(a)
	if p.queue.NumQueued() != 1 {
		t.Fatalf("%d re-broadcasts, want 1", p.queue.NumQueued())
	}
	if r := p.remote["A"]; r == nil || r.last != 4 || r.holders["http://a"] != (span{1, 4}) {
		t.Fatalf("remote mark %+v", p.remote["A"])
	}
	d.NotifyMsg(encode(&fedpb.Announcement{Mark: &fedpb.Mark{Origin: "B", Last: 9}, HolderUrl: "http://b"}))
	if p.remote["B"] != nil {
		t.Fatal("an announcement of the node's own region was noted")
	}
	d.NotifyMsg(encode(&fedpb.Announcement{Mark: &fedpb.Mark{Origin: "Z", Last: 9}, HolderUrl: "http://z"}))
	if p.remote["Z"] != nil || p.queue.NumQueued() != 1 {
		t.Fatal("an announcement of an untrusted origin was noted or passed on")
	}
	d.MergeRemoteState(encode(&fedpb.State{HolderUrl: "http://c", Marks: []*fedpb.Mark{{Origin: "A", First: 2, Last: 6}}}), false)
	if r := p.remote["A"]; r.last != 6 || r.holders["http://c"] != (span{2, 6}) || r.holders["http://a"] != (span{1, 4}) {
		t.Fatalf("after push/pull: %+v", r)
	}
	if p.queue.NumQueued() != 2 {
		t.Fatalf("%d broadcasts after push/pull brought a newer mark, want 2 (it is passed on)", p.queue.NumQueued())
	}
	d.MergeRemoteState(encode(&fedpb.State{HolderUrl: "http://d", Marks: []*fedpb.Mark{{Origin: "A", First: 2, Last: 6}}}), false)
	if p.remote["A"].holders["http://d"] != (span{2, 6}) || p.queue.NumQueued() != 2 {
		t.Fatal("push/pull of a known mark from another holder: holder not noted, or passed on")
	}
}

// A mark seen before brings its holder back after prune dropped it (its
// membership came after the mark): else the batch would be fetched from
// no one until the origin's next one. It is not passed on again (only a
// mark that raises the origin's newest is), and an old mark seen again
// does not shrink a holder's newer span.
func TestSeenMarkBringsPrunedHolderBack(t *testing.T) {
	p := testPool()
	d := (*delegate)(p)
	state := encode(&fedpb.State{HolderUrl: "http://a", Marks: []*fedpb.Mark{{Origin: "A", First: 1, Last: 1, Digest: []byte{1}}}})
	d.MergeRemoteState(state, false)
	delete(p.remote["A"].holders, "http://a") // what prune does to a holder not yet a member
	d.MergeRemoteState(state, false)
	if got := p.remote["A"].holders["http://a"]; got != (span{1, 1}) {
		t.Fatalf("holder after the mark came again: %+v, want batches 1 to 1", got)
	}
	d.MergeRemoteState(encode(&fedpb.State{HolderUrl: "http://a", Marks: []*fedpb.Mark{{Origin: "A", First: 1, Last: 3, Digest: []byte{3}}}}), false)
	d.MergeRemoteState(state, false)
	if got := p.remote["A"].holders["http://a"]; got != (span{1, 3}) {
		t.Fatalf("an old mark seen again changed the holder's span to %+v", got)
	}
	if n := p.queue.NumQueued(); n != 2 {
		t.Fatalf("%d broadcasts, want 2: batches 1 and 3 were news, the marks seen again were not", n)
	}
}
