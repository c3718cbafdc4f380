package fsm

import (
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyPutNode records or updates the addresses of a member.
func applyPutNode(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	n := cmd.GetPutNode()
	if n.GetId() == "" || n.GetRaftAddr() == "" || n.GetHttpAddr() == "" {
		return refuse(command.CodeInvalidCommand, "node needs an id, a raft address and an HTTP address")
	}
	s.nodes[n.GetId()] = proto.CloneOf(n)
	return &fsmpb.Result{}
}

func applyRemoveNode(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	id := cmd.GetRemoveNode().GetId()
	if _, ok := s.nodes[id]; !ok {
		return refuse(command.CodeUnknownNode, "no node with id %q", id)
	}
	delete(s.nodes, id)
	return &fsmpb.Result{}
}

// MinCommandVersion is the lowest command version the recorded members
// apply (a record without one: 1), at most limit; limit when no member is
// recorded. Read on every write, so it copies nothing.
func (f *FSM) MinCommandVersion(limit uint32) (v uint32, recorded bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v = limit
	for _, m := range f.state.nodes {
		v = min(v, max(1, m.GetCommandVersion()))
	}
	return v, len(f.state.nodes) > 0
}
