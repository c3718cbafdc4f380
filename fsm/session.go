package fsm

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Bounds of the session table: a write's result is kept for SessionTTL of
// command time, and for the newest MaxSessions writes at most. A node
// retries a write of unknown outcome within its write timeout (seconds), a
// follower whose forward's answer was lost at once: both well inside.
const (
	SessionTTL  = 3600 // seconds
	MaxSessions = 100_000
)

// RequestIDLen is the length of a command's request id.
const RequestIDLen = 16

// SessionsSince is the first command version whose request id the state
// machine honours: older builds ignore the field, so a command of an older
// version is applied as it comes, on every member alike.
const SessionsSince = 4

// sessions is the region's table of recent writes: the client sessions of
// the Raft dissertation (section 6.3), keyed by the request id a command
// carries. A command whose id is in the table is answered with the result
// it got the first time and changes nothing, so that a write proposed
// again after an unknown outcome (leadership lost, a forward's answer lost)
// takes effect once. Entries leave oldest first: past SessionTTL of
// command time or beyond MaxSessions. The queue is in apply order, so the
// table is the same on every member and snapshots as it is.
type sessions struct {
	byID  map[[RequestIDLen]byte]*fsmpb.Session
	queue []*fsmpb.Session // oldest first, from head
	head  int
}

func newSessions() *sessions {
	return &sessions{byID: map[[RequestIDLen]byte]*fsmpb.Session{}}
}

// sessionID returns a command's request id, and false for a command that
// has none or whose version predates sessions.
func sessionID(cmd *fsmpb.Command) ([RequestIDLen]byte, bool) {
	id := cmd.GetRequestId()
	if cmd.GetVersion() < SessionsSince || len(id) != RequestIDLen {
		return [RequestIDLen]byte{}, false
	}
	return [RequestIDLen]byte(id), true
}

// replay returns the first result of a command applied before under the
// same request id. The copy is the caller's.
func (t *sessions) replay(cmd *fsmpb.Command) (*fsmpb.Result, bool) {
	id, ok := sessionID(cmd)
	if !ok {
		return nil, false
	}
	s, ok := t.byID[id]
	if !ok || s.GetType() != cmd.GetType() {
		return nil, false
	}
	return proto.CloneOf(s.GetResult()), true
}

// record keeps a command's result under its request id, after letting go
// of the entries the command's time or the bound retires.
func (t *sessions) record(cmd *fsmpb.Command, res *fsmpb.Result) {
	id, ok := sessionID(cmd)
	if !ok {
		return
	}
	t.retire(cmd.GetTimeUnix()-SessionTTL, MaxSessions-1)
	if _, dup := t.byID[id]; dup {
		return // the same id on a command of another type: keep the first
	}
	kept := &fsmpb.Result{}
	if res != nil {
		kept = proto.CloneOf(res)
	}
	t.push(&fsmpb.Session{RequestId: id[:], Type: cmd.GetType(), TimeUnix: cmd.GetTimeUnix(), Result: kept})
}

func (t *sessions) push(s *fsmpb.Session) {
	t.byID[[RequestIDLen]byte(s.GetRequestId())] = s
	t.queue = append(t.queue, s)
}

// retire drops the oldest entries while they are older than before or
// more than keep remain.
func (t *sessions) retire(before int64, keep int) {
	for t.len() > 0 {
		s := t.queue[t.head]
		if s.GetTimeUnix() >= before && t.len() <= keep {
			break
		}
		delete(t.byID, [RequestIDLen]byte(s.GetRequestId()))
		t.queue[t.head] = nil
		t.head++
	}
	if t.head > 1024 && t.head > len(t.queue)/2 {
		t.queue = append([]*fsmpb.Session(nil), t.queue[t.head:]...)
		t.head = 0
	}
}

func (t *sessions) len() int { return len(t.queue) - t.head }

// list returns the entries oldest first; entries are never changed once
// kept, so the snapshot shares them.
func (t *sessions) list() []*fsmpb.Session {
	return append([]*fsmpb.Session(nil), t.queue[t.head:]...)
}

// readSessions reads n entries of a snapshot, oldest first.
func readSessions(s *state, n uint64, get func(proto.Message) error) error {
	for i := range n {
		e := &fsmpb.Session{}
		if err := get(e); err != nil {
			return fmt.Errorf("read session %d: %w", i, err)
		}
		if len(e.GetRequestId()) != RequestIDLen || e.GetResult() == nil {
			return fmt.Errorf("session %d: request id is not %d bytes, or no result", i, RequestIDLen)
		}
		if _, dup := s.sessions.byID[[RequestIDLen]byte(e.GetRequestId())]; dup {
			return fmt.Errorf("session %d: request id %x twice", i, e.GetRequestId())
		}
		s.sessions.push(e)
	}
	return nil
}
