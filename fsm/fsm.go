// Package fsm is the replicated state machine of a region: the authoritative
// key set, the submissions that brought the keys, the health authorities that
// may authorize uploads and the HTTP addresses of the members.
//
// It is pure and deterministic. Time enters only as the leader's stamp on a
// command, nothing is random, and every snapshot and read view is sorted, so
// the same log gives the same state and the same bytes on every node.
package fsm

import (
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// CommandVersion is the newest command encoding this build writes and reads.
const CommandVersion = 1

// applyFunc applies one decoded command to the state; the caller holds the
// write lock.
type applyFunc func(s *state, cmd *fsmpb.Command) Response

// Response is what Apply returns for one log entry: a value for the caller
// or an error that tells why the command changed nothing.
type Response struct {
	Value any
	Err   error
}

// FSM is the region's state machine. It implements raft.BatchingFSM so that
// a batch of log entries is applied under one lock acquisition.
type FSM struct {
	mu       sync.RWMutex
	state    *state
	appliers map[fsmpb.CommandType]applyFunc
}

// New returns an empty state machine.
func New() *FSM {
	return &FSM{
		state: newState(),
		appliers: map[fsmpb.CommandType]applyFunc{
			fsmpb.CommandType_COMMAND_TYPE_PUBLISH:          applyPublish,
			fsmpb.CommandType_COMMAND_TYPE_PUT_AUTHORITY:    applyPutAuthority,
			fsmpb.CommandType_COMMAND_TYPE_REMOVE_AUTHORITY: applyRemoveAuthority,
			fsmpb.CommandType_COMMAND_TYPE_PUT_NODE:         applyPutNode,
			fsmpb.CommandType_COMMAND_TYPE_REMOVE_NODE:      applyRemoveNode,
			fsmpb.CommandType_COMMAND_TYPE_SEAL:             applySeal,
			fsmpb.CommandType_COMMAND_TYPE_REVOKE:           applyRevoke,
			fsmpb.CommandType_COMMAND_TYPE_EXPIRE:           applyExpire,
			fsmpb.CommandType_COMMAND_TYPE_PUT_PROVIDER:     applyPutProvider,
			fsmpb.CommandType_COMMAND_TYPE_REVOKE_PROVIDER:  applyRevokeProvider,
			fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE:       applyIssueCode,
			fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST:        applyPutTrust,
			fsmpb.CommandType_COMMAND_TYPE_REMOVE_TRUST:     applyRemoveTrust,
			fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH:     applyImportBatch,
		},
	}
}

// Apply applies one committed log entry.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyLocked(l)
}

// ApplyBatch applies committed log entries in order under one lock.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	return out
}

func (f *FSM) applyLocked(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd fsmpb.Command
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		return Response{Err: fmt.Errorf("decode command at index %d: %w", l.Index, err)}
	}
	if v := cmd.GetVersion(); v == 0 || v > CommandVersion {
		return Response{Err: fmt.Errorf("command at index %d has version %d, this build reads 1..%d", l.Index, v, CommandVersion)}
	}
	apply, ok := f.appliers[cmd.GetType()]
	if !ok {
		return Response{Err: fmt.Errorf("command at index %d: unknown type %v", l.Index, cmd.GetType())}
	}
	return apply(f.state, &cmd)
}

// Snapshot captures the state for raft. It copies under the read lock (a
// sorted copy is made later, outside the lock, in Persist).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.capture(), nil
}

// Restore replaces the state with the one read from a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
	return nil
}

// Encode marshals a command for the raft log, setting the current version.
func Encode(cmd *fsmpb.Command) ([]byte, error) {
	cmd.Version = CommandVersion
	b, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %v command: %w", cmd.GetType(), err)
	}
	return b, nil
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)
