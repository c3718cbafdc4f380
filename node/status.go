package node

import (
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
		Members: members, Keys: n.fsm.NumKeys(),
	}, nil
}

// IsLeader reports whether this node is the region's leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// AppliedIndex is the index of the last log entry applied to the local state.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// Ready reports whether the node knows a leader and has applied everything
// it knows to be committed, so that its reads are current.
func (n *Node) Ready() bool {
	_, leader := n.raft.LeaderWithID()
	if leader == "" {
		return false
	}
	if n.raft.State() != raft.Leader && time.Since(n.raft.LastContact()) > 5*time.Second {
		return false
	}
	return n.raft.AppliedIndex() >= n.raft.CommitIndex()
}

// Barrier waits until this node, as leader, has applied every committed
// entry: the basis of consistent reads. Followers forward nothing here; the
// API sends consistent reads to the leader.
func (n *Node) Barrier(timeout time.Duration) error {
	return n.raft.Barrier(timeout).Error()
}

// LeaderURL returns the HTTP base URL of the leader when it is another
// node, for redirecting consistent reads; "" when this node leads or no
// leader is known.
func (n *Node) LeaderURL() string { return n.leaderURL() }
