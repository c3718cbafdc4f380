package node

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// PathReadIndex is the member endpoint where a follower asks the leader for
// a read index.
const PathReadIndex = "/internal/v1/read-index"

// readIndexTimeout bounds a consistent read's wait for the leader's
// barrier and for this node to apply up to it.
const readIndexTimeout = 5 * time.Second

// ReadIndex is what PathReadIndex answers: an index at or past every write
// acknowledged before it was asked.
type ReadIndex struct {
	Index uint64 `json:"index"`
}

// LeaderAppliedIndex, on the leader, returns the index its state machine
// has applied, without a barrier (PathReadIndex?applied=true): a leader
// applies a write before it acknowledges it, and an admitted leader has
// applied its predecessors' (Admitted), so every acknowledged write is at
// or before it. It is a command's index, which a follower's state machine
// reaches too (raft's commit index may be a barrier or a no-op, which no
// state machine counts). A deposed leader that does not know it yet may
// give an index behind the region's; CatchUp accepts that, ConsistentRead
// does not.
func (n *Node) LeaderAppliedIndex() (ReadIndex, error) {
	if !n.IsLeader() {
		return ReadIndex{}, ErrNoLeader
	}
	return ReadIndex{Index: n.stateIndex()}, nil
}

// LeaderReadIndex, on the leader, confirms that it still leads by
// committing a barrier through a majority, and returns the index applied
// then. A deposed leader that does not know it yet cannot commit, so it
// gives no stale index.
func (n *Node) LeaderReadIndex() (ReadIndex, error) {
	if !n.IsLeader() {
		return ReadIndex{}, ErrNoLeader
	}
	if err := n.raft.Barrier(readIndexTimeout).Error(); err != nil {
		return ReadIndex{}, fmt.Errorf("read index barrier: %w", err)
	}
	return ReadIndex{Index: n.stateIndex()}, nil
}

// stateIndex is an index this node's state machine has certainly applied:
// the last entry it applied, or the snapshot raft last took or restored,
// whichever is later. raft's own AppliedIndex counts entries handed to
// the state machine, which may not have applied them yet: a read that
// waited for it alone could miss a write acknowledged before it.
func (n *Node) stateIndex() uint64 {
	idx := n.fsm.AppliedIndex()
	if snap, err := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64); err == nil {
		idx = max(idx, snap)
	}
	return idx
}

// ConsistentRead returns once this node's state holds every write
// acknowledged anywhere in the region before the call, so that a read of
// the local state after it is linearizable: on the leader after a barrier;
// on a follower once it has applied the leader's read index (raft's
// read-index protocol), so the read is still served from its own state.
func (n *Node) ConsistentRead(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readIndexTimeout)
	defer cancel()
	if n.IsLeader() {
		_, err := n.LeaderReadIndex()
		return err
	}
	leader := n.leaderURL()
	if leader == "" {
		return ErrNoLeader
	}
	var ri ReadIndex
	status, err := n.call(ctx, http.MethodGet, leader+PathReadIndex, "", nil, &ri)
	if err != nil {
		return fmt.Errorf("read index from the leader: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("read index from the leader: status %d: %w", status, ErrNoLeader)
	}
	for n.stateIndex() < ri.Index {
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return fmt.Errorf("apply up to the read index %d (at %d): %w", ri.Index, n.stateIndex(), err)
		}
	}
	return nil
}

// CatchUp returns once this node has applied what the leader had applied
// when the call began, so that a credential an acknowledged write created
// (an API key, a provider) is found here: a follower learns of a commit a
// moment after the leader. It asks the leader for its applied index, with
// no barrier, so it costs the leader no log entry; the requests that wait
// at once share one question (a stranger sending unknown keys costs the
// leader at most one question in flight per follower). On the leader it
// returns at once: it has applied what it acknowledged (Admitted).
func (n *Node) CatchUp(ctx context.Context) error {
	if n.IsLeader() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readIndexTimeout)
	defer cancel()
	ri, err := n.commits.fetch(ctx, n.goRun, func() (ReadIndex, error) {
		fctx, cancel := context.WithTimeout(n.runCtx, readIndexTimeout)
		defer cancel()
		leader := n.leaderURL()
		if leader == "" {
			return ReadIndex{}, ErrNoLeader
		}
		var ri ReadIndex
		status, err := n.call(fctx, http.MethodGet, leader+PathReadIndex+"?applied=true", "", nil, &ri)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d: %w", status, ErrNoLeader)
		}
		return ri, err
	})
	if err != nil {
		return fmt.Errorf("applied index from the leader: %w", err)
	}
	n.awaitApplied(ctx, ri.Index)
	return ctx.Err()
}

// commitFetches coalesces questions for the leader's applied index: a
// caller joins the next question, which starts once the one in flight (if
// any) is answered, so that every caller's answer was asked after it came.
type commitFetches struct {
	mu             sync.Mutex
	flight, queued *commitFetch
}

type commitFetch struct {
	done chan struct{}
	ri   ReadIndex
	err  error
}

// fetch joins the queued question, starting it through run when none is
// in flight, and waits for its answer within ctx.
func (c *commitFetches) fetch(ctx context.Context, run func(func()), ask func() (ReadIndex, error)) (ReadIndex, error) {
	c.mu.Lock()
	if c.queued == nil {
		c.queued = &commitFetch{done: make(chan struct{})}
	}
	f := c.queued
	if c.flight == nil {
		c.start(run, ask)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.ri, f.err
	case <-ctx.Done():
		return ReadIndex{}, ctx.Err()
	}
}

// start sends the queued question; the caller holds mu.
func (c *commitFetches) start(run func(func()), ask func() (ReadIndex, error)) {
	f := c.queued
	c.flight, c.queued = f, nil
	run(func() {
		f.ri, f.err = ask()
		close(f.done)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.flight = nil
		if c.queued != nil {
			c.start(run, ask)
		}
	})
}
