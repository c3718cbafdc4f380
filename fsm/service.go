package fsm

import (
	"cmp"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// maxDeleteAfter bounds how long after the end of service the region keeps
// what it deletes then.
const maxDeleteAfter = 366 * 24 * 60 * 60

// closedTypes are the commands refused from the wind-down time on: what
// takes a person's keys or issues and uses the codes that authorize them,
// and the imports of other servers' keys into this region's files.
var closedTypes = map[fsmpb.CommandType]string{
	fsmpb.CommandType_COMMAND_TYPE_PUBLISH:                 "uploads are",
	fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE:              "codes are",
	fsmpb.CommandType_COMMAND_TYPE_ISSUE_VERIFICATION_CODE: "codes are",
	fsmpb.CommandType_COMMAND_TYPE_CLAIM_CODE:              "codes are",
	fsmpb.CommandType_COMMAND_TYPE_CLAIM_TOKEN:             "certificates are",
	fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH:            "imports are",
	fsmpb.CommandType_COMMAND_TYPE_IMPORT_EXPORT:           "imports are",
	fsmpb.CommandType_COMMAND_TYPE_IMPORT_EFGS:             "imports are",
}

// applySetService schedules, moves or cancels the end of service (from
// version 8). A wind-down time already past is the command's own: the end
// is never backdated; once the wind-down has begun, a time already past
// keeps the one in force (the same request sent again changes nothing
// apps see). Once the service has ended nothing changes it. The app
// configuration in force gets a new version that tells apps.
func applySetService(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	req, t := cmd.GetSetService(), cmd.GetTimeUnix()
	switch {
	case s.service.GetEndedUnix() != 0:
		return refuse(command.CodeServiceOver, "the service ended at %s: its end can no longer be moved or cancelled", unixUTC(s.service.GetEndedUnix()))
	case req.GetCancel() && s.service.GetWindDownUnix() == 0:
		return refuse(command.CodeInvalidCommand, "no end of service is scheduled")
	case req.GetCancel():
		s.service = nil
	case req.GetWindDownUnix() <= 0:
		return refuse(command.CodeInvalidCommand, "wind_down_unix: the time uploads stop is needed")
	case req.GetDeleteAfterSeconds() < 0 || req.GetDeleteAfterSeconds() > maxDeleteAfter:
		return refuse(command.CodeInvalidCommand, "delete_after_seconds: %d, want 0..%d (a year)", req.GetDeleteAfterSeconds(), maxDeleteAfter)
	default:
		wind := max(req.GetWindDownUnix(), t)
		if s.windingDown(t) && req.GetWindDownUnix() <= t {
			wind = s.service.GetWindDownUnix() // under way: sent again, it does not move
		}
		s.service = &fsmpb.Service{WindDownUnix: wind, DeleteAfterSeconds: req.GetDeleteAfterSeconds(), Author: req.GetAuthor(), ScheduledUnix: t}
	}
	s.announceService(t, cmp.Or(req.GetAuthor(), "an operator"))
	return &fsmpb.Result{Value: &fsmpb.Result_Service{Service: s.serviceOrEmpty()}}
}

// serviceRefusal refuses a command closedTypes names once the wind-down
// has begun at the command's time; nil for any other.
func (s *state) serviceRefusal(cmd *fsmpb.Command) *fsmpb.Result {
	what, closed := closedTypes[cmd.GetType()]
	if !closed || !s.windingDown(cmd.GetTimeUnix()) {
		return nil
	}
	return refuse(command.CodeServiceEnded, "this service stopped taking uploads at %s: %s no longer taken", unixUTC(s.service.GetWindDownUnix()), what)
}

// windingDown tells whether uploads are refused at time t.
func (s *state) windingDown(t int64) bool {
	return s.service.GetWindDownUnix() != 0 && t >= s.service.GetWindDownUnix()
}

// serviceStatus is where the service stands at time t.
func (s *state) serviceStatus(t int64) fsmpb.ServiceStatus {
	switch {
	case s.service.GetEndedUnix() != 0:
		return fsmpb.ServiceStatus_SERVICE_STATUS_ENDED
	case s.windingDown(t):
		return fsmpb.ServiceStatus_SERVICE_STATUS_WINDING_DOWN
	}
	return fsmpb.ServiceStatus_SERVICE_STATUS_ACTIVE
}

// announceService keeps a new version of the app configuration in force
// when the service it tells apps of (status, wind-down time) is no longer
// the state's at time t: the same configuration otherwise, by author.
// Without an app configuration apps learn nothing.
func (s *state) announceService(t int64, author string) {
	n := len(s.appConfigs)
	if n == 0 {
		return
	}
	cur := s.appConfigs[n-1]
	status, wind := s.serviceStatus(t), s.service.GetWindDownUnix()
	if cur.GetServiceStatus() == status && cur.GetWindDownUnix() == wind {
		return
	}
	next := proto.CloneOf(cur)
	next.Version, next.TimeUnix, next.ServiceStatus, next.WindDownUnix, next.Author = cur.GetVersion()+1, t, status, wind, author
	next.Signatures = nil // signed anew
	s.keepAppConfig(next)
}

// expireService moves the end of service on at an EXPIRE of time t: the
// wind-down told to apps once it has begun; the end recorded once no own
// batch or unsealed key is left (every file has aged out); the deletion
// done once delete_after_seconds have passed since the end.
func (s *state) expireService(t int64) {
	if !s.windingDown(t) {
		return
	}
	if s.service.GetEndedUnix() == 0 && len(s.batches) == 0 && len(s.pending) == 0 && len(s.revisedPending) == 0 {
		s.service.EndedUnix = t
	}
	s.announceService(t, "the region (end of service)")
	if end := s.service.GetEndedUnix(); end != 0 && t >= end+s.service.GetDeleteAfterSeconds() {
		s.deleteAtEnd(t)
	}
}

// deleteAtEnd deletes what the region kept of people once its service has
// ended: submissions, one-time codes and tokens, API keys, the providers'
// tokens, and every account but the operators' (they keep theirs, to see
// it done). It runs at every EXPIRE from its time on, so that what is
// made afterwards goes too; the first run's time is the deletion's, and
// the counts add up. The audit log ages out as before.
func (s *state) deleteAtEnd(t int64) {
	svc := s.service
	if svc.DeletedUnix == 0 {
		svc.DeletedUnix = t
	}
	svc.DeletedSubmissions += uint32(len(s.submissions))
	s.keys.deleteFunc(func(TEK, keyRecord) bool { return true }) // none is left but withdrawn, unpublished ones
	s.pending, s.revisedPending = nil, nil
	s.submissions, s.submissionIdx, s.live = map[uint32]*Submission{}, map[[16]byte]uint32{}, map[uint32]uint32{}
	svc.DeletedCodes += uint32(len(s.vcodes) + len(s.codes))
	s.vcodes, s.vcodeHash, s.codes = map[string]*fsmpb.VerificationCode{}, map[[32]byte]string{}, map[uint32]*fsmpb.Code{}
	svc.DeletedTokens += uint32(len(s.tokens))
	s.tokens = map[string]*fsmpb.VerificationToken{}
	svc.DeletedApiKeys += uint32(len(s.apiKeys))
	s.apiKeys = map[[32]byte]*fsmpb.ApiKey{}
	for email, u := range s.users {
		if u.GetProvider() != "" || !slices.Contains(u.GetRoles(), "operator") {
			delete(s.users, email)
			svc.DeletedAccounts++
		}
	}
	for id, p := range s.providers {
		if len(p.GetTokenHash()) > 0 {
			p = proto.CloneOf(p)
			p.TokenHash = nil
			s.providers[id] = p
		}
	}
}

func (s *state) serviceOrEmpty() *fsmpb.Service {
	if s.service == nil {
		return &fsmpb.Service{}
	}
	return proto.CloneOf(s.service)
}

func unixUTC(t int64) string { return time.Unix(t, 0).UTC().Format(time.RFC3339) }

// Service returns a copy of the region's end of service (empty: none
// scheduled).
func (f *FSM) Service() *fsmpb.Service {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.serviceOrEmpty()
}

// WindingDown tells whether, at time now, the service has stopped taking
// uploads and imports: the leader's import jobs rest then, rather than
// propose what the state machine refuses.
func (f *FSM) WindingDown(now int64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.windingDown(now)
}

// ServiceTimeline is an end of service as operators read it: where it
// stands at a time, and when what is still to come is due.
type ServiceTimeline struct {
	// Stage is "active" (no end scheduled), "scheduled", "winding-down",
	// "ended" or "deleted".
	Stage string
	// WindDownUnix: uploads stop. EndDueUnix: when the last keys of the
	// wind-down's day will have aged out (an estimate until EndedUnix).
	// DeleteDueUnix: when the deletion is due (an estimate until the
	// end).
	WindDownUnix, EndDueUnix, EndedUnix, DeleteDueUnix, DeletedUnix int64
}

// TimelineOf tells where svc stands at time now, under a retention of
// retention seconds. A key of the wind-down's day is sealed once that day
// ends and leaves with the first whole step (a day, or the retention when
// shorter, as node/expire.go cuts) that retention cuts after it: the end
// is due about retention and a step after the day's end, an estimate (a
// roll-back's batch sealed later ends it later).
func TimelineOf(svc *fsmpb.Service, retention, now int64) ServiceTimeline {
	w := svc.GetWindDownUnix()
	if w == 0 {
		return ServiceTimeline{Stage: "active"}
	}
	const daySeconds = 86_400
	if retention <= 0 {
		retention = 14 * daySeconds // the default policy's
	}
	tl := ServiceTimeline{WindDownUnix: w, EndedUnix: svc.GetEndedUnix(), DeletedUnix: svc.GetDeletedUnix(),
		EndDueUnix: (w+daySeconds-1)/daySeconds*daySeconds + min(daySeconds, retention) + retention}
	if tl.EndedUnix != 0 {
		tl.EndDueUnix = tl.EndedUnix
	}
	tl.DeleteDueUnix = tl.EndDueUnix + svc.GetDeleteAfterSeconds()
	switch {
	case tl.DeletedUnix != 0:
		tl.Stage = "deleted"
	case tl.EndedUnix != 0:
		tl.Stage = "ended"
	case now >= w:
		tl.Stage = "winding-down"
	default:
		tl.Stage = "scheduled"
	}
	return tl
}
