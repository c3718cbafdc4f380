package federation

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/federation/fedpb"
)

// delegate is the pool's memberlist delegate. Every method returns at
// once: memberlist calls them from its packet loops.
type delegate Pool

func (d *delegate) NodeMeta(limit int) []byte {
	b := encode(&fedpb.Meta{Region: d.cfg.Region, HttpUrl: d.cfg.HTTPURL})
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg takes an announcement: a new one is noted and re-broadcast
// (a memberlist broadcast reaches only the sender's direct targets); one
// that does not decode is dropped.
func (d *delegate) NotifyMsg(b []byte) {
	var a fedpb.Announcement
	if proto.Unmarshal(b, &a) != nil || a.GetMark().GetOrigin() == "" {
		return
	}
	p := (*Pool)(d)
	if fresh, _ := p.note(a.GetMark(), a.GetHolderUrl()); fresh {
		p.queue.QueueBroadcast(broadcast(bytes.Clone(b)))
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends this node's high-water marks in a push/pull.
func (d *delegate) LocalState(bool) []byte {
	p := (*Pool)(d)
	return encode(&fedpb.State{HolderUrl: p.cfg.HTTPURL, Marks: p.marks()})
}

// MergeRemoteState notes what a peer holds. A mark newer than any this
// node knew of its origin is passed on as an announcement: this node may
// be a follower that learnt of a batch its leader missed (gossip is UDP,
// and a push/pull with the right peer may be minutes away for the leader
// itself). Marks that only add a holder are not: a holder per node per
// batch would grow gossip with the square of the pool.
func (d *delegate) MergeRemoteState(buf []byte, _ bool) {
	var st fedpb.State
	if proto.Unmarshal(buf, &st) != nil {
		return
	}
	p := (*Pool)(d)
	for _, m := range st.GetMarks() {
		if _, raised := p.note(m, st.GetHolderUrl()); raised {
			p.queue.QueueBroadcast(broadcast(encode(&fedpb.Announcement{Mark: m, HolderUrl: st.GetHolderUrl()})))
		}
	}
}

// broadcast is one queued announcement.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// note records that holder has origin's batches from mark.First to
// mark.Last; it reports whether the mark was new to this node (fresh) and
// whether it is newer than every mark of its origin before (raised). Marks of
// origins this region does not trust are dropped, and an origin has at
// most maxHolders holders (pool members are far fewer; prune drops those
// that are not members).
func (p *Pool) note(m *fedpb.Mark, holder string) (fresh, raised bool) {
	if m.GetOrigin() == p.cfg.Region || m.GetLast() == 0 || holder == "" || !p.isTrusted(m.GetOrigin()) {
		return false, false
	}
	key := fmt.Sprintf("%s/%d/%d/%x/%s", m.GetOrigin(), m.GetFirst(), m.GetLast(), m.GetDigest(), holder)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Seen before: not news to pass on, but the holder is noted again, in
	// case prune dropped it meanwhile (a push/pull can bring a mark before
	// its holder's membership does): else it would be fetched from no one
	// until the origin's next batch.
	_, seen := p.seen[key]
	if !seen {
		p.forgetSeen()
		p.seen[key] = time.Now()
	}
	r := p.remote[m.GetOrigin()]
	if r == nil {
		r = &remoteMark{holders: map[string]span{}}
		p.remote[m.GetOrigin()] = r
	}
	_, known := r.holders[holder]
	if seen && known || !known && len(r.holders) >= maxHolders {
		return false, false
	}
	if m.GetLast() > r.last {
		r.last, raised = m.GetLast(), true
		select { // wake the puller now rather than at its next tick
		case p.wake <- struct{}{}:
		default:
		}
	}
	r.holders[holder] = span{first: max(m.GetFirst(), 1), last: m.GetLast()}
	return !seen, raised
}

// Bounds of gossip state: past maxSeen entries, seen announcements older
// than seenFor are forgotten (prune forgets them anyway), and past twice
// as many all of them (a forgotten announcement is only re-broadcast once
// more); an origin keeps at most maxHolders holders.
const (
	maxSeen    = 10_000
	seenFor    = 10 * time.Minute
	maxHolders = 256
)

// forgetSeen keeps the seen set bounded; the caller holds the lock.
func (p *Pool) forgetSeen() {
	if len(p.seen) < maxSeen {
		return
	}
	for k, at := range p.seen {
		if time.Since(at) > seenFor {
			delete(p.seen, k)
		}
	}
	if len(p.seen) >= 2*maxSeen {
		clear(p.seen)
	}
}

// marks lists what this node holds: its own region's chain and every
// origin it keeps batches of.
func (p *Pool) marks() []*fedpb.Mark {
	f := p.node.FSM()
	var out []*fedpb.Mark
	if first, last, digest := f.OwnChain(); last > 0 {
		out = append(out, &fedpb.Mark{Origin: p.cfg.Region, First: first, Last: last, Digest: digest})
	}
	for _, r := range f.Trusted() {
		kept := f.ForeignBatches(r.GetRegion())
		if n := len(kept); n > 0 {
			out = append(out, &fedpb.Mark{Origin: r.GetRegion(), First: kept[0].GetSeq(), Last: kept[n-1].GetSeq(), Digest: kept[n-1].GetDigest()})
		}
	}
	return out
}

// announceLoop broadcasts, from the region's leader, every origin whose
// newest batch here is newer than what this node last announced. Only the
// leader announces (its followers hold the same): announcements grow with
// regions, not nodes; followers still show up as holders through push/pull.
func (p *Pool) announceLoop(ctx context.Context) {
	for sleep(ctx, 200*time.Millisecond) == nil {
		if !p.node.IsLeader() {
			continue
		}
		for _, m := range p.marks() {
			p.mu.Lock()
			fresh := m.GetLast() > p.lastSent[m.GetOrigin()]
			p.lastSent[m.GetOrigin()] = max(p.lastSent[m.GetOrigin()], m.GetLast())
			p.mu.Unlock()
			if fresh {
				p.queue.QueueBroadcast(broadcast(encode(&fedpb.Announcement{Mark: m, HolderUrl: p.cfg.HTTPURL})))
			}
		}
	}
}
