// Package fsmtest gives the tests of packages above the state machine a
// region of the state machine alone: a write is applied at once, as the
// leader of a one-node region commits it, with no raft, so that what those
// packages decide and translate is tested on the real state machine.
package fsmtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Region is a command.Applier over one state machine.
type Region struct {
	// State is the state machine the writes are applied to.
	State *fsm.FSM
	// Version, when set, is the version commands are stamped with (a
	// region of an older build); 0 is this build's.
	Version uint32
	now     func() time.Time
	mu      sync.Mutex
	index   uint64
}

// New returns a region of a new state machine whose commands are stamped
// with now.
func New(now func() time.Time) *Region { return &Region{State: fsm.New(), now: now} }

// Apply stamps a command as node.Apply does (this build's version, or
// Version; the time; a request id) and applies it; a refusal is a
// *command.Error.
func (r *Region) Apply(_ context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := command.Stamp(cmd, cmp.Or(r.Version, command.Version)); err != nil {
		return nil, err
	}
	cmd.TimeUnix = r.now().Unix()
	cmd.RequestId = make([]byte, fsm.RequestIDLen)
	rand.Read(cmd.RequestId)
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	r.index++
	res := r.State.Apply(&raft.Log{Index: r.index, Term: 1, Type: raft.LogCommand, Data: data}).(*fsmpb.Result)
	if ref := res.GetRefusal(); ref != nil {
		return res, &command.Error{Code: command.Code(ref.GetCode()), Message: ref.GetMessage()}
	}
	return res, nil
}

var _ command.Applier = (*Region)(nil)
