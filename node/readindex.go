package node

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
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
