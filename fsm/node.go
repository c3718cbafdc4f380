package fsm

import (
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyPutNode records or updates the addresses of a member.
func applyPutNode(s *state, cmd *fsmpb.Command) Response {
	n := cmd.GetPutNode()
	if n.GetId() == "" || n.GetRaftAddr() == "" || n.GetHttpAddr() == "" {
		return refuse(CodeInvalidCommand, "node needs an id, a raft address and an HTTP address")
	}
	s.nodes[n.GetId()] = proto.CloneOf(n)
	return Response{}
}

func applyRemoveNode(s *state, cmd *fsmpb.Command) Response {
	id := cmd.GetRemoveNode().GetId()
	if _, ok := s.nodes[id]; !ok {
		return refuse(CodeUnknownNode, "no node with id %q", id)
	}
	delete(s.nodes, id)
	return Response{}
}
