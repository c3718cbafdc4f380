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

// Admitted reports whether this node's state has caught up at least to its
// own admission to the region (it leads, or it has applied its own member
// record). A node that joined moments ago holds none of the region's keys
// and authorities yet: it must not tell a valid client "unauthorized".
func (n *Node) Admitted() bool {
	if n.IsLeader() {
		return true
	}
	_, ok := n.fsm.Node(n.cfg.ID)
	return ok
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
