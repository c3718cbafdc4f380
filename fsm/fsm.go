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
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyFunc applies one decoded command to the state; the caller holds the
// write lock.
type applyFunc func(s *state, cmd *fsmpb.Command) *fsmpb.Result

// FSM is the region's state machine. It implements raft.BatchingFSM so that
// a batch of log entries is applied under one lock acquisition.
//
// Apply returns a *fsmpb.Result for every command entry: the command's
// typed result, or the refusal that tells why it changed nothing.
type FSM struct {
	mu       sync.RWMutex
	state    *state
	appliers map[fsmpb.CommandType]applyFunc
	halt     func(error)
	// applied is the index of the last log entry applied here (not
	// replicated: it says how far this copy is).
	applied atomic.Uint64
}

// New returns an empty state machine. It stops the node (see SetHalt) at an
// entry it cannot apply.
func New() *FSM {
	return &FSM{
		state: newState(),
		halt:  func(err error) { panic(err) },
		appliers: map[fsmpb.CommandType]applyFunc{
			fsmpb.CommandType_COMMAND_TYPE_PUBLISH:                  applyPublish,
			fsmpb.CommandType_COMMAND_TYPE_PUT_AUTHORITY:            applyPutAuthority,
			fsmpb.CommandType_COMMAND_TYPE_REMOVE_AUTHORITY:         applyRemoveAuthority,
			fsmpb.CommandType_COMMAND_TYPE_PUT_NODE:                 applyPutNode,
			fsmpb.CommandType_COMMAND_TYPE_REMOVE_NODE:              applyRemoveNode,
			fsmpb.CommandType_COMMAND_TYPE_SEAL:                     applySeal,
			fsmpb.CommandType_COMMAND_TYPE_REVOKE:                   applyRevoke,
			fsmpb.CommandType_COMMAND_TYPE_EXPIRE:                   applyExpire,
			fsmpb.CommandType_COMMAND_TYPE_PUT_PROVIDER:             applyPutProvider,
			fsmpb.CommandType_COMMAND_TYPE_REVOKE_PROVIDER:          applyRevokeProvider,
			fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE:               applyIssueCode,
			fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST:                applyPutTrust,
			fsmpb.CommandType_COMMAND_TYPE_REMOVE_TRUST:             applyRemoveTrust,
			fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH:             applyImportBatch,
			fsmpb.CommandType_COMMAND_TYPE_SET_POLICY:               applySetPolicy,
			fsmpb.CommandType_COMMAND_TYPE_PUT_API_KEY:              applyPutAPIKey,
			fsmpb.CommandType_COMMAND_TYPE_REVOKE_API_KEY:           applyRevokeAPIKey,
			fsmpb.CommandType_COMMAND_TYPE_ISSUE_VERIFICATION_CODE:  applyIssueVerificationCode,
			fsmpb.CommandType_COMMAND_TYPE_CLAIM_CODE:               applyClaimCode,
			fsmpb.CommandType_COMMAND_TYPE_CLAIM_TOKEN:              applyClaimToken,
			fsmpb.CommandType_COMMAND_TYPE_EXPIRE_VERIFICATION_CODE: applyExpireVerificationCode,
			fsmpb.CommandType_COMMAND_TYPE_PUT_USER:                 applyPutUser,
			fsmpb.CommandType_COMMAND_TYPE_LOGIN:                    applyLogin,
			fsmpb.CommandType_COMMAND_TYPE_AUDIT:                    applyAudit,
			fsmpb.CommandType_COMMAND_TYPE_REVOKE_CERT:              applyRevokeCert,
			fsmpb.CommandType_COMMAND_TYPE_ACCEPT_INVITE:            applyAcceptInvite,
			fsmpb.CommandType_COMMAND_TYPE_IMPORT_EXPORT:            applyImportExport,
			fsmpb.CommandType_COMMAND_TYPE_EFGS_UPLOADED:            applyEFGSUploaded,
			fsmpb.CommandType_COMMAND_TYPE_IMPORT_EFGS:              applyImportEFGS,
			fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_COUNTRY:          applyPutHubCountry,
			fsmpb.CommandType_COMMAND_TYPE_HUB_UPLOAD:               applyHubUpload,
			fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_CALLBACK:         applyPutHubCallback,
			fsmpb.CommandType_COMMAND_TYPE_SET_APP_CONFIG:           applySetAppConfig,
			fsmpb.CommandType_COMMAND_TYPE_SET_SERVICE:              applySetService,
			fsmpb.CommandType_COMMAND_TYPE_SIGN_FILES:               applySignFiles,
		},
	}
}

// AppliedIndex is the index of the last log entry this state machine has
// applied. raft's own AppliedIndex counts the entries it has handed to the
// state machine, which may not be applied yet; after a snapshot is
// restored, the snapshot's index tells more (node.ConsistentRead takes
// the larger).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// SetHalt sets what happens at a log entry this build cannot apply (it
// does not decode, or has a type or version this build does not know):
// skipping it would let this node's state drift from the others', so the
// node must stop until it runs a build that knows the entry. The default
// panics. Call it before raft starts.
func (f *FSM) SetHalt(halt func(error)) { f.halt = halt }

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
	defer f.applied.Store(l.Index)
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd fsmpb.Command
	err := proto.Unmarshal(l.Data, &cmd)
	if err == nil {
		err = command.Check(&cmd)
	}
	apply, ok := f.appliers[cmd.GetType()]
	if err == nil && !ok {
		err = fmt.Errorf("no applier for %v", cmd.GetType())
	}
	if err != nil {
		f.halt(fmt.Errorf("log entry %d cannot be applied by this build (command version %d): %w", l.Index, command.Version, err))
		return refuse(command.CodeInvalidCommand, "entry %d: %v", l.Index, err)
	}
	f.state.stamp(&cmd)
	if res, ok := f.state.sessions.replay(&cmd); ok {
		return res
	}
	res := f.state.serviceRefusal(&cmd)
	if res == nil {
		res = apply(f.state, &cmd)
	}
	if cmd.GetVersion() >= 2 && changed(res) {
		f.state.lastTime = max(f.state.lastTime, cmd.GetTimeUnix())
	}
	f.state.sessions.record(&cmd, res)
	return res
}

// changed tells whether a command's result says it changed the state: not
// refused, and not a publish that was replayed or stored nothing.
func changed(res *fsmpb.Result) bool {
	if p := res.GetPublish(); p != nil {
		return !p.GetReplayed() && p.GetInserted()+p.GetRevised() > 0
	}
	return res.GetRefusal() == nil
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

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)
