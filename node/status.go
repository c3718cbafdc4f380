package node

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// PublicStatus is what GET /v1/status tells anyone about a node: nothing
// that counts uploads (keys, raft indexes, term) or names the members'
// raft addresses.
type PublicStatus struct {
	NodeID   string `json:"node_id"`
	Region   string `json:"region"`
	State    string `json:"state"`
	LeaderID string `json:"leader_id"`
	Ready    bool   `json:"ready"`
}

// PublicStatus reports the node as anyone may see it.
func (n *Node) PublicStatus() PublicStatus {
	_, leader := n.raft.LeaderWithID()
	return PublicStatus{NodeID: n.cfg.ID, Region: n.cfg.Region, State: n.raft.State().String(),
		LeaderID: string(leader), Ready: n.Ready()}
}

// Status is what operators see of a node (GET /v1/admin/status); it holds
// no secrets.
type Status struct {
	NodeID       string   `json:"node_id"`
	Region       string   `json:"region"`
	State        string   `json:"state"`
	LeaderID     string   `json:"leader_id"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	LastIndex    uint64   `json:"last_index"`
	Members      []Member `json:"members"`
	Keys         int      `json:"keys"`
	// CommandVersion is the newest command version every member applies:
	// below this build's while a rolling upgrade is incomplete.
	CommandVersion uint32 `json:"command_version"`
}

// Status reports the node's raft state and what it holds.
func (n *Node) Status() (Status, error) {
	_, leader := n.raft.LeaderWithID()
	members, err := n.Members()
	if err != nil {
		return Status{}, err
	}
	return Status{
		NodeID: n.cfg.ID, Region: n.cfg.Region, State: n.raft.State().String(),
		LeaderID: string(leader), Term: n.raft.CurrentTerm(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(), LastIndex: n.raft.LastIndex(),
		Members: members, Keys: n.fsm.NumKeys(), CommandVersion: n.RegionVersion(),
	}, nil
}

// IsLeader reports whether this node is the region's leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// AppliedIndex is the index of the last log entry applied to the local state.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// Admitted reports whether this node's state has caught up with its region
// far enough to answer clients rightly. A node that joined moments ago
// holds none of the region's keys and authorities yet, and one that just
// restarted or was just elected may not have applied the entries after its
// snapshot: it must not tell a valid client "unauthorized". A leader is
// admitted once it has applied every entry committed before its term
// (catchUpAsLeader); a follower once it has heard from its region since it
// started, has had raft hand its state machine everything committed then,
// and holds its own member record. A follower stays admitted after that,
// as it stays a member. raft's applied index, not the state machine's, is
// compared: after an election the log ends in entries the state machine
// never sees (the no-op, the new leader's barrier), and a follower that
// waited for its state machine to reach them waited for the next write.
func (n *Node) Admitted() bool {
	if n.IsLeader() {
		return n.leaderCaughtUp.Load() == n.raft.CurrentTerm()
	}
	if n.caughtUp.Load() {
		return true
	}
	if n.raft.LastContact().IsZero() || n.raft.AppliedIndex() < n.raft.CommitIndex() {
		return false
	}
	if _, ok := n.fsm.Node(n.cfg.ID); !ok {
		return false
	}
	n.caughtUp.Store(true)
	return true
}

// catchUpAsLeader admits clients on this new leader (Admitted) once it has
// applied every entry committed before its term: a barrier commits an
// entry of the term, and raft applies all before it first. The wait ends
// with leadership too: raft may leave a barrier unanswered when it shuts
// down (TestDataDirIdentity hung on one).
func (n *Node) catchUpAsLeader(ctx context.Context, term uint64) {
	for ctx.Err() == nil {
		err := waitFuture(ctx, n.raft.Barrier(readIndexTimeout))
		switch {
		case err == nil:
			n.leaderCaughtUp.Store(term)
			return
		case ctx.Err() != nil, errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
			return
		}
		n.cfg.Logger.Warn("new leader has not caught up yet", "node", n.cfg.ID, "term", term, "err", err)
	}
}

// Ready reports whether the node knows a leader, has applied everything
// it knows to be committed, so that its reads are current, and has caught
// up to its own admission (Admitted), so that it answers clients rightly.
func (n *Node) Ready() bool {
	_, leader := n.raft.LeaderWithID()
	if leader == "" {
		return false
	}
	if n.raft.State() != raft.Leader && time.Since(n.raft.LastContact()) > 5*time.Second {
		return false
	}
	return n.raft.AppliedIndex() >= n.raft.CommitIndex() && n.Admitted()
}
