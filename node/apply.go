package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// ErrNoLeader means no leader could take the write before the deadline;
// the outcome of the write is unknown and it is safe to retry.
var ErrNoLeader = errors.New("no leader available")

// errRetry marks a failed attempt that may succeed against the next leader.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

// Apply commits a command through the region's leader and returns the state
// machine's answer: on the leader directly, on a follower by forwarding to
// the leader. During an election it waits, up to the write timeout, for a
// new leader. Commands are idempotent, so an attempt whose outcome is
// unknown (leadership lost mid-way) is simply tried again.
func (n *Node) Apply(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		val, err := n.applyOnce(ctx, cmd)
		var retry errRetry
		if !errors.As(err, &retry) {
			return val, err
		}
		if sleepCtx(ctx, backoff(attempt)) != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoLeader, retry.err)
		}
	}
}

func (n *Node) applyOnce(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	if n.raft.State() == raft.Leader {
		return n.applyLocal(ctx, cmd)
	}
	url := n.leaderURL()
	if url == "" {
		return nil, errRetry{errors.New("leader unknown")}
	}
	return n.forwardApply(ctx, url, cmd)
}

// applyLocal stamps the time and proposes the command on this leader.
func (n *Node) applyLocal(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	cmd = proto.CloneOf(cmd)
	cmd.TimeUnix = time.Now().Unix()
	data, err := fsm.Encode(cmd)
	if err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(data, timeout)
	if err := waitFuture(ctx, f); err != nil {
		err = fmt.Errorf("apply %v: %w", cmd.GetType(), err)
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, errRetry{err}
		}
		return nil, err
	}
	resp, ok := f.Response().(fsm.Response)
	if !ok {
		return nil, fmt.Errorf("apply %v: unexpected response %T", cmd.GetType(), f.Response())
	}
	return resp.Value, resp.Err
}

// leaderURL returns the HTTP base URL of the current leader, or "".
func (n *Node) leaderURL() string {
	_, id := n.raft.LeaderWithID()
	if id == "" || string(id) == n.cfg.ID {
		return ""
	}
	m, ok := n.fsm.Node(string(id))
	if !ok {
		return ""
	}
	return "http://" + m.GetHttpAddr()
}

func backoff(attempt int) time.Duration {
	d := 20 * time.Millisecond << min(attempt, 4)
	return min(d, 250*time.Millisecond)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitFuture waits for a raft future, or for the context: a future still
// queued when raft shuts down is never answered, and a caller must not
// wait for it forever (the node's Close waits for its callers).
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errRetry{fmt.Errorf("waiting for raft: %w", ctx.Err())}
	}
}
