package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// proposeRounds is how many rounds of proposals a leader has in flight at
// once. raft sends what it is given at once: left alone it starts a round
// (a log write with fsync on every member, an append to each follower) for
// every few writes, and under load the rounds, not the writes, cost the
// CPU. Writes proposed while a round is busy join the next one, so a round
// carries what arrived during the last; a lone write waits for nothing. A
// write could not commit before the entries ahead of it anyway; what one
// round at a time gives up is the overlap of sending the next round while
// the last commits. Measured (BenchmarkUploadCPU, 3 nodes, 64 clients to
// the leader): 448-467 us of CPU per upload with raft left alone, 400 with
// two rounds, 385 with one, and 3,788 uploads/s instead of 2,907-3,068.
const proposeRounds = 1

// roundLinger is how long a leader whose last round carried several writes
// waits before it starts the next, so that the next carries more: a
// round's fsync on every member, its log write and its append cost the
// same for 5 writes as for 10, and at 16 clients rounds carried 5-8. A
// lone write (the last round had one) waits for nothing. Measured
// (BenchmarkUploadCPU, 3 nodes, three runs with and without, taken in
// turn): 16 clients spread over the nodes 870-908 us of CPU an upload
// and 1,364-1,463 uploads/s without, 740-790 us and 1,512-1,600/s with
// 2 ms (8.9 uploads a round instead of 5.4); 16 clients to the leader
// 627-683 us, 1,817-1,986/s, then 552-565 us, 2,057-2,095/s, p99 15 ms
// then 16-18; 64 clients 3-4 % less CPU. 1 ms bought half as much, 4 ms
// no more CPU and fewer uploads/s at 16 clients.
const roundLinger = 2 * time.Millisecond

// maxRoundEntries bounds the writes of one round; raft sends as many in one
// append (its MaxAppendEntries).
const maxRoundEntries = 256

// proposal is one encoded command waiting for its round.
type proposal struct {
	ctx     context.Context
	data    []byte
	timeout time.Duration
	done    chan raft.ApplyFuture
}

// propose hands an encoded command to raft within the next round and
// waits until raft answered it (committed and applied, or failed).
func (n *Node) propose(ctx context.Context, data []byte, timeout time.Duration) (raft.ApplyFuture, error) {
	p := &proposal{ctx: ctx, data: data, timeout: timeout, done: make(chan raft.ApplyFuture, 1)}
	if n.proposals.push(p, proposeRounds) {
		n.goRun(func() { drain(&n.proposals, pickRound, n.runRound) })
	}
	select {
	case f := <-p.done:
		return f, f.Error()
	case <-ctx.Done():
		return nil, errRetry{fmt.Errorf("waiting for raft: %w", ctx.Err())}
	}
}

// pickRound chooses the next round: the oldest proposals whose callers
// still wait, at most a round's worth.
func pickRound(pending []*proposal) (round, rest []*proposal) {
	i := 0
	for ; i < len(pending) && len(round) < maxRoundEntries; i++ {
		if p := pending[i]; p.ctx.Err() == nil {
			round = append(round, p)
		}
	}
	return round, pending[i:]
}

// runRound proposes a round's commands at once, so that raft writes and
// sends them together, and hands each caller its future once raft answered
// them all; after a round of several it lingers (roundLinger) before the
// next. It gives up (false) when the node closes: raft leaves the futures
// it still holds then unanswered.
func (n *Node) runRound(round []*proposal) bool {
	n.metrics.round.Observe(float64(len(round)))
	var wg sync.WaitGroup
	for _, p := range round {
		f := n.raft.Apply(p.data, p.timeout)
		wg.Go(func() {
			f.Error()
			p.done <- f
		})
	}
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	select {
	case <-answered:
	case <-n.runCtx.Done():
		return false
	}
	return len(round) == 1 || sleepCtx(n.runCtx, roundLinger) == nil
}
