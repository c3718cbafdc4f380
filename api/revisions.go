package api

import (
	"net/http"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
)

// revisionCode maps the state machine's refusals of an upload's keys to
// the GAEN error codes apps know ("" for other refusals).
func revisionCode(c fsm.Code) string {
	switch c {
	case fsm.CodeKeyExists:
		return publish.CodeMissingRevisionToken
	case fsm.CodeKeyAlreadyRevised:
		return publish.CodeKeyAlreadyRevised
	case fsm.CodeBadTransition:
		return publish.CodeInvalidReportTypeTransition
	case fsm.CodeUnknownKey:
		return publish.CodeInvalidRevisionToken
	}
	return ""
}

// uploadPlan splits an upload's keys into new keys and revisions of keys
// stored before.
type uploadPlan struct {
	all, newKeys, revisions []*fsmpb.Key
}

// planRevisions finds the keys of the upload that are stored already:
// revising them needs the revision token of the upload that brought them,
// covering each key with its start and period. A negative report stores no
// new key (GAEN: a first negative upload is not stored) but revises.
func (s *Server) planRevisions(req *publish.Request, v *publish.Verified) (uploadPlan, error) {
	p := uploadPlan{all: v.Keys}
	for _, k := range v.Keys {
		if s.node.FSM().HasKey(fsm.TEK(k.GetKeyData())) {
			p.revisions = append(p.revisions, k)
		} else if !v.StoreNothing {
			p.newKeys = append(p.newKeys, k)
		}
	}
	if len(p.revisions) == 0 {
		return p, nil
	}
	if req.RevisionToken == "" {
		return p, revisionError(publish.CodeMissingRevisionToken, "a key of this upload is already stored; revising it needs the revision token")
	}
	allowed, err := publish.OpenRevisionToken(s.revisionKey, req.RevisionToken)
	if err != nil {
		return p, revisionError(publish.CodeInvalidRevisionToken, err.Error())
	}
	covered := make(map[publish.RevisableKey]bool, len(allowed))
	for _, k := range allowed {
		covered[k] = true
	}
	for _, k := range p.revisions {
		if !covered[revisable(k)] {
			return p, revisionError(publish.CodeInvalidRevisionToken, "the revision token does not cover a stored key of this upload")
		}
	}
	return p, nil
}

// token is the revision token for the keys of this upload.
func (p uploadPlan) token(key []byte) (string, error) {
	if len(p.all) == 0 {
		return "", nil
	}
	keys := make([]publish.RevisableKey, len(p.all))
	for i, k := range p.all {
		keys[i] = revisable(k)
	}
	tok, err := publish.SealRevisionToken(key, keys)
	if err != nil {
		return "", &publish.Error{Status: http.StatusInternalServerError, Code: publish.CodeInternalError, Message: "revision token: " + err.Error()}
	}
	return tok, nil
}

func revisable(k *fsmpb.Key) publish.RevisableKey {
	return publish.RevisableKey{Key: [16]byte(k.GetKeyData()), Start: k.GetRollingStart(), Period: k.GetRollingPeriod()}
}

func revisionError(code, msg string) error {
	return &publish.Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}
