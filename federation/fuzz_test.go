package federation

import (
	"testing"

	"github.com/covid-backend/covid-backend/federation/fedpb"
)

// Gossip from any pool member (announcements, push/pull state) never
// panics the delegate, and what it notes stays bounded by what was sent.
func FuzzGossip(f *testing.F) {
	f.Add(encode(&fedpb.Announcement{Mark: &fedpb.Mark{Origin: "A", First: 1, Last: 4, Digest: []byte{1}}, HolderUrl: "http://a"}))
	f.Add(encode(&fedpb.State{HolderUrl: "http://a", Marks: []*fedpb.Mark{{Origin: "A", Last: 2}, {Origin: "C", First: 3, Last: 3}}}))
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := testPool()
		d := (*delegate)(p)
		d.NotifyMsg(b)
		d.MergeRemoteState(b, false)
		if len(p.remote) > len(b) {
			t.Fatalf("%d origins noted from %d bytes", len(p.remote), len(b))
		}
	})
}
