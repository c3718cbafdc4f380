package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

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
		if !p.node.IsLeader() {
			continue
		}
		for _, r := range p.node.FSM().Trusted() {
			if r.GetServe() || r.GetMerge() {
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

// nextWanted is the next sequence number to fetch for origin (0: none)
// and the peers that may hold it, those in backoff left out.
func (p *Pool) nextWanted(origin string) (uint32, []string) {
	kept := p.node.FSM().ForeignBatches(origin)
	members := p.memberURLs() // before the lock: memberlist has its own
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.remote[origin]
	if r == nil {
		return 0, nil
	}
	next := r.first
	if n := len(kept); n > 0 {
		next = kept[n-1].GetSeq() + 1
	}
	if next == 0 || next > r.last {
		return 0, nil
	}
	var holders []string
	for h, last := range r.holders {
		if h != p.cfg.HTTPURL && last >= next && time.Now().After(p.backoff[h]) && (members == nil || members[h]) {
			holders = append(holders, h)
		}
	}
	// Spread the load: start at a different holder for each batch.
	slices.Sort(holders)
	if n := len(holders); n > 1 {
		k := int(next) % n
		holders = append(holders[k:], holders[:k]...)
	}
	return next, holders
}

// fetchAndImport tries the holders in turn; it reports whether the batch
// is now kept.
func (p *Pool) fetchAndImport(ctx context.Context, origin string, seq uint32, holders []string) bool {
	for _, h := range holders {
		data, err := p.fetch(ctx, h, origin, seq)
		if errors.Is(err, errNotHeld) {
			continue // it announced the batch but no longer has it (retention)
		}
		if err != nil {
			p.cfg.Logger.Info("federation: fetch failed", "holder", h, "origin", origin, "seq", seq, "err", err)
			p.pause(h, unreachableBackoff) // unreachable: try the other holders first
			continue
		}
		// Checked before it is proposed: the raft log carries no batch the
		// state machine refuses, nor one other than what was asked for.
		gotOrigin, gotSeq, duplicate, refused := p.node.FSM().CheckImport(data)
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
		p.cfg.Logger.Info("federation: imported batch", "origin", origin, "seq", seq, "from", h)
		p.mu.Lock()
		p.received[origin] = time.Now()
		p.mu.Unlock()
		return true
	}
	return false
}

// reject counts a refused batch by reason and backs off the peer that sent it.
func (p *Pool) reject(holder string, refused *command.Error) {
	p.cfg.Logger.Warn("federation: batch rejected", "holder", holder, "code", refused.Code, "reason", refused.Message)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected[string(refused.Code)]++
	p.backoff[holder] = time.Now().Add(peerBackoff)
}

// pause leaves a holder out of fetches for a while.
func (p *Pool) pause(holder string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backoff[holder] = time.Now().Add(d)
}

func (p *Pool) fetch(ctx context.Context, holder, origin string, seq uint32) ([]byte, error) {
	u := fmt.Sprintf("%s/v1/federation/batches/%s/%d", holder, url.PathEscape(origin), seq)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
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
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBatchBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBatchBytes {
		return nil, fmt.Errorf("%s: batch over %d bytes", u, maxBatchBytes)
	}
	return data, nil
}

// memberURLs are the holder URLs fetches may go to: those pool members
// advertise whose host is the member's own pool address, so that gossip
// cannot send this node's fetches to another host. Nil without a pool
// (tests of the puller alone).
func (p *Pool) memberURLs() map[string]bool {
	if p.ml == nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range p.ml.Members() {
		var meta fedpb.Meta
		if proto.Unmarshal(m.Meta, &meta) != nil {
			continue
		}
		if u, err := url.Parse(meta.GetHttpUrl()); err == nil && u.Hostname() == m.Addr.String() && u.Path == "" {
			out[meta.GetHttpUrl()] = true
		}
	}
	return out
}
