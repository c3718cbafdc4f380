package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/federation/fedpb"
)

// Limits of a batch transfer.
const (
	maxBatchBytes      = 32 << 20
	peerBackoff        = 30 * time.Second
	unreachableBackoff = 5 * time.Second
)

// errNotHeld: the holder answered that it does not have the batch.
var errNotHeld = errors.New("batch not held")

// pullLoop fetches, on the region's leader, the batches of trusted
// origins that peers hold and this region lacks, and commits them through
// raft (where the signature and chain are checked) in sequence order.
func (p *Pool) pullLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.PullInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		}
		p.prune()
		if !p.node.IsLeader() || p.node.FSM().WindingDown(p.node.Config().Now().Unix()) {
			continue // no import is taken once the service winds down
		}
		for _, r := range p.node.FSM().Trusted() {
			if r.GetKind() == "" && (r.GetServe() || r.GetMerge()) { // regions of this project, not outside origins
				p.catchUp(ctx, r.GetRegion())
			}
		}
	}
}

// catchUp imports the missing batches of one origin, one at a time.
func (p *Pool) catchUp(ctx context.Context, origin string) {
	for ctx.Err() == nil {
		next, holders := p.nextWanted(origin)
		if next == 0 {
			return
		}
		if !p.fetchAndImport(ctx, origin, next, holders) {
			return
		}
	}
}

// holder is a pool member that may hold a batch: where to fetch it, and
// the member name that backoff is kept by (the URL without a pool).
type holder struct{ url, member string }

// nextWanted is the next sequence number to fetch for origin (0: none)
// and the members that announced holding it, those in backoff left out.
// When none of the origin's batches is kept, it is the oldest batch above
// the region's high-water mark that an available holder offers.
func (p *Pool) nextWanted(origin string) (uint32, []holder) {
	next, chained := p.node.FSM().NextForeign(origin)
	members := p.memberURLs() // before the lock: memberlist has its own
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.remote[origin]
	if r == nil {
		return 0, nil
	}
	var avail []holder
	for u := range r.holders {
		h, ok := holder{url: u, member: u}, members == nil
		if members != nil {
			h.member, ok = members[u]
		}
		if ok && u != p.cfg.HTTPURL && time.Now().After(p.backoff[h.member]) {
			avail = append(avail, h)
		}
	}
	if !chained {
		oldest := uint32(0)
		for _, h := range avail {
			if sp := r.holders[h.url]; sp.last >= next && (oldest == 0 || sp.first < oldest) {
				oldest = sp.first
			}
		}
		next = max(next, oldest)
	}
	avail = slices.DeleteFunc(avail, func(h holder) bool { sp := r.holders[h.url]; return next < sp.first || next > sp.last })
	if len(avail) == 0 {
		return 0, nil
	}
	// Spread the load: start at a different holder for each batch.
	slices.SortFunc(avail, func(a, b holder) int { return strings.Compare(a.url, b.url) })
	k := int(next) % len(avail)
	return next, append(avail[k:], avail[:k]...)
}

// fetchAndImport tries the holders in turn; it reports whether the batch
// is now kept.
func (p *Pool) fetchAndImport(ctx context.Context, origin string, seq uint32, holders []holder) bool {
	for _, h := range holders {
		data, err := p.fetch(ctx, h.url, origin, seq)
		if errors.Is(err, errNotHeld) {
			continue // it announced the batch but no longer has it (retention)
		}
		if err != nil {
			p.cfg.Logger.Info("federation: fetch failed", "holder", h.member, "origin", origin, "seq", seq, "err", err)
			p.pause(h, unreachableBackoff) // unreachable: try the other holders first
			continue
		}
		// Checked before it is proposed, at the version it will be
		// stamped with: the raft log carries no batch the state machine
		// refuses, nor one other than what was asked for.
		version := min(p.node.RegionVersion(), command.Version)
		gotOrigin, gotSeq, duplicate, refused := p.node.FSM().CheckImport(data, version)
		if refused == nil && (gotOrigin != origin || gotSeq != seq) {
			refused = command.Refused(command.CodeBadBatch, "asked %s batch %d, got %s batch %d", origin, seq, gotOrigin, gotSeq)
		}
		if refused != nil {
			p.reject(h, refused)
			continue
		}
		if duplicate {
			return true
		}
		_, err = command.ImportBatch(ctx, p.node, data)
		if errors.As(err, &refused) {
			p.reject(h, refused)
			continue
		}
		if err != nil {
			p.cfg.Logger.Warn("federation: import", "origin", origin, "seq", seq, "err", err)
			return false
		}
		p.cfg.Logger.Info("federation: imported batch", "origin", origin, "seq", seq, "from", h.member)
		p.mu.Lock()
		p.received[origin] = time.Now()
		p.mu.Unlock()
		return true
	}
	return false
}

// reject counts a refused batch by reason and backs off the member that
// sent it.
func (p *Pool) reject(h holder, refused *command.Error) {
	p.cfg.Logger.Warn("federation: batch rejected", "holder", h.member, "code", refused.Code, "reason", refused.Message)
	p.mu.Lock()
	p.rejected[string(refused.Code)]++
	p.mu.Unlock()
	p.pause(h, peerBackoff)
}

// pause leaves a member out of fetches for a while.
func (p *Pool) pause(h holder, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backoff[h.member] = time.Now().Add(d)
}

// prune forgets what gossip left that no longer matters: holders that are
// not pool members, backoffs that ended, announcements seen long ago and
// origins no longer trusted. It runs on every node, leader or not.
func (p *Pool) prune() {
	members := p.memberURLs()
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for m, until := range p.backoff {
		if now.After(until) {
			delete(p.backoff, m)
		}
	}
	for k, at := range p.seen {
		if now.Sub(at) > seenFor {
			delete(p.seen, k)
		}
	}
	for origin, r := range p.remote {
		if !p.isTrusted(origin) {
			delete(p.remote, origin)
			continue
		}
		for u := range r.holders {
			if _, ok := members[u]; members != nil && !ok {
				delete(r.holders, u)
			}
		}
	}
}

// A holder must send a batch at slowHolderRate at least, after a grace
// of slowHolderGrace (its answer's start included): one that drips bytes
// would otherwise hold the pull loop for the client's whole timeout.
const (
	slowHolderGrace = 5 * time.Second
	slowHolderRate  = 256 << 10 // bytes a second
)

// errSlowHolder: the holder sent its batch slower than slowHolderRate.
var errSlowHolder = errors.New("holder too slow")

func (p *Pool) fetch(ctx context.Context, holder, origin string, seq uint32) ([]byte, error) {
	u := fmt.Sprintf("%s/v1/federation/batches/%s/%d", holder, url.PathEscape(origin), seq)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	floor := time.AfterFunc(slowHolderGrace, func() { cancel(errSlowHolder) })
	defer floor.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, errNotHeld
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d", u, resp.StatusCode)
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return nil, fmt.Errorf("%s: content encoding %q (a batch is sent as is)", u, enc)
	}
	body := &rateFloor{r: io.LimitReader(resp.Body, maxBatchBytes+1), start: start, timer: floor}
	data, err := io.ReadAll(body)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errSlowHolder) {
			return nil, fmt.Errorf("%s: %w (under %d bytes a second)", u, cause, slowHolderRate)
		}
		return nil, err
	}
	if len(data) > maxBatchBytes {
		return nil, fmt.Errorf("%s: batch over %d bytes", u, maxBatchBytes)
	}
	return data, nil
}

// rateFloor moves the deadline of a fetch (its timer) as bytes arrive:
// slowHolderGrace plus the time slowHolderRate needs for what came.
type rateFloor struct {
	r     io.Reader
	start time.Time
	n     int64
	timer *time.Timer
}

func (f *rateFloor) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 {
		f.n += int64(n)
		allowed := slowHolderGrace + time.Duration(f.n)*time.Second/slowHolderRate
		f.timer.Reset(time.Until(f.start.Add(allowed)))
	}
	return n, err
}

// memberURLs are the holder URLs fetches may go to, with the member
// behind each: those that live pool members (answering probes at their
// address) advertise for their own pool address (holderURL), so that
// gossip cannot send this node's fetches to another host or listener.
// Nil without a pool (tests of the puller alone).
func (p *Pool) memberURLs() map[string]string {
	if p.ml == nil {
		return nil
	}
	out := map[string]string{}
	for _, m := range p.ml.Members() {
		var meta fedpb.Meta
		if m.State != memberlist.StateAlive || proto.Unmarshal(m.Meta, &meta) != nil {
			continue
		}
		if holderURL(meta.GetHttpUrl(), m.Addr) {
			out[meta.GetHttpUrl()] = m.Name
		}
	}
	return out
}

// holderURL tells whether a member's advertised URL is one batches may be
// fetched under: http or https on the member's own address, with a port,
// and nothing after it (a path, a query, even a bare "?", would make the
// batch's path part of something else and reach another listener).
func holderURL(raw string, addr net.IP) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Opaque == "" && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && !strings.Contains(raw, "#") &&
		u.Port() != "" && u.Hostname() == addr.String()
}
