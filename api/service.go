package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// maxDeleteAfter bounds --delete-after as the state machine does.
const maxDeleteAfter = 366 * 24 * time.Hour

// ServiceRequest is POST /v1/admin/service: schedule or move the end of
// service (windDownFrom, RFC 3339; deleteAfter, a Go duration such as
// "168h") or cancel it.
type ServiceRequest struct {
	WindDownFrom string `json:"windDownFrom,omitempty"`
	DeleteAfter  string `json:"deleteAfter,omitempty"`
	Cancel       bool   `json:"cancel,omitempty"`
	Author       string `json:"author,omitempty"`
}

// ServiceView is the end of service as GET /v1/admin/service shows it:
// the stage (fsm.TimelineOf), the times in RFC 3339, due times estimated
// until they happen, and what the deletion deleted.
type ServiceView struct {
	Stage        string          `json:"stage"`
	WindDownFrom string          `json:"windDownFrom,omitempty"`
	DeleteAfter  string          `json:"deleteAfter,omitempty"`
	ScheduledBy  string          `json:"scheduledBy,omitempty"`
	ScheduledAt  string          `json:"scheduledAt,omitempty"`
	EndDue       string          `json:"endDue,omitempty"`
	EndedAt      string          `json:"endedAt,omitempty"`
	DeletionDue  string          `json:"deletionDue,omitempty"`
	DeletedAt    string          `json:"deletedAt,omitempty"`
	Deleted      *DeletedRecords `json:"deleted,omitempty"`
}

// DeletedRecords counts what the deletion at the end of service deleted.
type DeletedRecords struct {
	Submissions uint32 `json:"submissions"`
	Codes       uint32 `json:"codes"`
	Tokens      uint32 `json:"tokens"`
	Accounts    uint32 `json:"accounts"`
	APIKeys     uint32 `json:"apiKeys"`
}

func rfc3339(unix int64) string {
	if unix == 0 {
		return ""
	}
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}

// serviceView builds the view of svc at now under the region's retention.
func serviceView(svc *fsmpb.Service, retention int64, now time.Time) ServiceView {
	tl := fsm.TimelineOf(svc, retention, now.Unix())
	v := ServiceView{Stage: tl.Stage}
	if tl.WindDownUnix == 0 {
		return v
	}
	v.WindDownFrom, v.ScheduledBy, v.ScheduledAt = rfc3339(tl.WindDownUnix), svc.GetAuthor(), rfc3339(svc.GetScheduledUnix())
	v.DeleteAfter = (time.Duration(svc.GetDeleteAfterSeconds()) * time.Second).String()
	v.EndDue, v.EndedAt, v.DeletionDue, v.DeletedAt = rfc3339(tl.EndDueUnix), rfc3339(tl.EndedUnix), rfc3339(tl.DeleteDueUnix), rfc3339(tl.DeletedUnix)
	if tl.DeletedUnix != 0 {
		v.Deleted = &DeletedRecords{Submissions: svc.GetDeletedSubmissions(), Codes: svc.GetDeletedCodes(), Tokens: svc.GetDeletedTokens(),
			Accounts: svc.GetDeletedAccounts(), APIKeys: svc.GetDeletedApiKeys()}
	}
	return v
}

// getService is GET /v1/admin/service.
func (s *Server) getService(c *gin.Context) {
	p, _ := s.node.Policy()
	c.JSON(http.StatusOK, serviceView(s.node.FSM().Service(), p.GetRetentionSeconds(), s.cfg.Now()))
}

// setService is POST /v1/admin/service (ServiceRequest).
func (s *Server) setService(c *gin.Context) {
	var req ServiceRequest
	if !bindStrict(c, &req) {
		return
	}
	cmd, err := serviceCommand(req)
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	svc, err := command.SetService(c.Request.Context(), s.node, cmd)
	if err != nil {
		failErr(c, err)
		return
	}
	p, _ := s.node.Policy()
	c.JSON(http.StatusOK, serviceView(svc, p.GetRetentionSeconds(), s.cfg.Now()))
}

// serviceCommand reads a request into SET_SERVICE.
func serviceCommand(req ServiceRequest) (*fsmpb.SetService, error) {
	cmd := &fsmpb.SetService{Cancel: req.Cancel, Author: req.Author}
	if cmd.Author == "" {
		cmd.Author = "an operator (admin API)"
	}
	if req.Cancel {
		if req.WindDownFrom != "" || req.DeleteAfter != "" {
			return nil, fmt.Errorf("cancel takes no windDownFrom or deleteAfter")
		}
		return cmd, nil
	}
	w, err := time.Parse(time.RFC3339, req.WindDownFrom)
	if err != nil {
		return nil, fmt.Errorf("windDownFrom: %q is not a time like 2027-03-01T00:00:00Z", req.WindDownFrom)
	}
	after, err := time.ParseDuration(req.DeleteAfter)
	if err != nil || after < 0 || after > maxDeleteAfter || after%time.Second != 0 {
		return nil, fmt.Errorf("deleteAfter: %q is not a duration from 0s to 8784h (a year) in whole seconds", req.DeleteAfter)
	}
	cmd.WindDownUnix, cmd.DeleteAfterSeconds = w.Unix(), int64(after/time.Second)
	return cmd, nil
}

// windDown returns the time uploads stopped when, by this node's state and
// clock, they have.
func (s *Server) windDown() (time.Time, bool) {
	w := s.node.FSM().Service().GetWindDownUnix()
	return time.Unix(w, 0).UTC(), w != 0 && s.cfg.Now().Unix() >= w
}

// serviceEndedMessage is what apps and providers are told once the
// service winds down.
func serviceEndedMessage(w time.Time) string {
	return fmt.Sprintf("this service stopped taking uploads at %s: it has ended, no keys or codes are taken", w.Format(time.RFC3339))
}

// publishInService answers an upload 410 service_ended once the service
// winds down (a decoy is answered as before). The refusal comes as late
// as a decoy's answer: an app that was not updated still sends both, and
// an answer at once would tell a watcher of the network which was real.
func (s *Server) publishInService(c *gin.Context) bool {
	if w, ended := s.windDown(); ended {
		sleepUntil(c.Request.Context(), c.GetTime(ctxUploadStart).Add(s.chaffDelay()))
		s.publishFail(c, &publish.Error{Status: http.StatusGone, Code: publish.CodeServiceEnded, Message: serviceEndedMessage(w)})
		return false
	}
	return true
}

// inService answers the verification API's writes 410 service_ended
// once the service winds down, as late as a decoy's answer (as
// publishInService); it runs after readVerifyBody, which answers decoys
// as before.
func (s *Server) inService(c *gin.Context) {
	if w, ended := s.windDown(); ended {
		sleepUntil(c.Request.Context(), c.GetTime(ctxVerifyStart).Add(s.chaffDelay()))
		verifyFail(c, &verify.Error{Status: http.StatusGone, Code: verify.CodeServiceEnded, Message: serviceEndedMessage(w)})
	}
}
