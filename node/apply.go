package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
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
// machine's result (command.Applier): on the leader directly, on a follower
// by forwarding to the leader. It stamps the command's version here, once,
// with the newest version every member applies, and gives it a request id
// unless its builder derived one from the client's request. During an
// election it waits, up to the write timeout, for a new leader. An attempt
// whose outcome is unknown (leadership lost mid-way, a forward's answer
// lost) is tried again under the same request id, and the state machine
// answers a write it applied before with its first result (fsm/session.go),
// so the write takes effect once. A refusal is returned as *command.Error.
func (n *Node) Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	if err := n.checkDisk(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	if len(cmd.GetRequestId()) == 0 {
		cmd.RequestId = newRequestID()
	}
	if err := n.stamp(ctx, cmd); err != nil {
		return nil, err
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		res, err := n.applyOnce(ctx, cmd)
		var retry errRetry
		if !errors.As(err, &retry) {
			if res != nil {
				n.awaitApplied(ctx, res.GetLogIndex())
				n.writes.Record(time.Since(start))
			}
			return res, err
		}
		if sleepCtx(ctx, backoff(attempt)) != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoLeader, retry.err)
		}
	}
}

// awaitApplied waits, within ctx, until this node's state machine has
// applied the log entry idx, so that a client that wrote through this node
// reads its write here next (a forwarded write is answered by the leader
// as soon as the leader applied it). A leader has applied its own writes
// already; a leader of an older build names no entry (0). Past ctx the
// write is answered all the same: it took effect, and a client told
// otherwise would send it again. The state machine's own index is read
// first: stateIndex asks raft for its stats, which costs a write on the
// leader more than the check saves.
func (n *Node) awaitApplied(ctx context.Context, idx uint64) {
	for n.fsm.AppliedIndex() < idx && n.stateIndex() < idx && sleepCtx(ctx, time.Millisecond) == nil {
	}
}

// stamp sets the version cmd goes out with (the command is the applier's:
// command.Applier). When the region does not apply that version yet it
// waits, within ctx: a region being upgraded does not apply a new version
// before its last member runs the new build.
func (n *Node) stamp(ctx context.Context, cmd *fsmpb.Command) error {
	for attempt := 0; ; attempt++ {
		err := command.Stamp(cmd, n.RegionVersion())
		var pending *command.ErrUpgradePending
		if !errors.As(err, &pending) || sleepCtx(ctx, backoff(attempt)) != nil {
			return err
		}
	}
}

func (n *Node) applyOnce(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	if n.raft.State() == raft.Leader {
		return resultError(n.applyLocal(ctx, cmd))
	}
	url := n.leaderURL()
	if url == "" {
		return nil, errRetry{errors.New("leader unknown")}
	}
	return n.forwardApply(ctx, url, cmd)
}

// resultError returns a refusal carried by the result as *command.Error.
func resultError(res *fsmpb.Result, err error) (*fsmpb.Result, error) {
	if err != nil {
		return nil, err
	}
	if r := res.GetRefusal(); r != nil {
		return res, &command.Error{Code: command.Code(r.GetCode()), Message: r.GetMessage()}
	}
	return res, nil
}

// applyLocal stamps the time and proposes the command on this leader. It
// proposes only what every member applies (its version stays as the node
// that built it set it), so no member stops at the entry. cmd is the
// applier's (command.Applier), or was decoded from a forward: its time is
// set in place, and an attempt on another leader sets it again.
func (n *Node) applyLocal(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	if err := command.Check(cmd); err != nil {
		return nil, fmt.Errorf("leader %s cannot propose: %w", n.cfg.ID, err)
	}
	if region := n.RegionVersion(); cmd.GetVersion() > region {
		return nil, &command.ErrUpgradePending{Type: cmd.GetType(), Need: cmd.GetVersion(), Region: region}
	}
	if err := n.checkDisk(); err != nil {
		return nil, errRetry{err} // leadership goes to a member with room
	}
	if err := n.clockAgrees(ctx, cmd.GetType()); err != nil {
		return nil, err
	}
	cmd.TimeUnix = n.cfg.Now().Unix()
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %v command: %w", cmd.GetType(), err)
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	start := time.Now()
	f, err := n.propose(ctx, data, timeout)
	if err != nil {
		err = fmt.Errorf("apply %v: %w", cmd.GetType(), n.diskError(err))
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, errRetry{err}
		}
		return nil, err
	}
	res, ok := f.Response().(*fsmpb.Result)
	if !ok {
		return nil, fmt.Errorf("apply %v: unexpected response %T", cmd.GetType(), f.Response())
	}
	n.metrics.observeApply(cmd.GetType(), time.Since(start))
	res.LogIndex = f.Index() // res is this caller's: the state machine keeps a copy
	return res, nil
}

// RegionVersion is the newest command version every member of the region
// applies, by the versions members recorded in the replicated state. A
// node that just bootstrapped a region of its own has recorded nothing
// yet, but it is the whole region: its build's version is the region's.
// Otherwise a region with no record applies version 1 (the oldest), and
// a command stamped there would lose what later versions record (a seal
// its export keys, any write its request id).
func (n *Node) RegionVersion() uint32 {
	v, recorded := n.fsm.MinCommandVersion(command.Version)
	if !recorded && !n.alone() {
		return 1
	}
	return v
}

// alone tells whether this node is the only server of its region's raft
// configuration, as right after it bootstrapped the region.
func (n *Node) alone() bool {
	servers, err := n.servers()
	return err == nil && len(servers) == 1 && string(servers[0].ID) == n.cfg.ID
}

// leaderURL returns the base URL of the current leader's member
// endpoints, or "".
func (n *Node) leaderURL() string {
	addr, id := n.raft.LeaderWithID()
	if id == "" || string(id) == n.cfg.ID {
		return ""
	}
	m, ok := n.fsm.Node(string(id))
	if n.cfg.MemberTLS == nil && !ok {
		return ""
	}
	return n.memberURL(string(addr), m.GetHttpAddr())
}

// newRequestID draws a write's request id.
func newRequestID() []byte {
	id := make([]byte, fsm.RequestIDLen)
	rand.Read(id) // crypto/rand.Read never fails
	return id
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
