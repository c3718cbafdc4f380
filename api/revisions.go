package api

import (
	"errors"
	"net/http"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
)

// revisionCode maps the state machine's refusals of an upload's keys to
// the GAEN error codes apps know ("" for other refusals).
func revisionCode(c command.Code) string {
	switch c {
	case command.CodeKeyExists, command.CodeMissingToken:
		return publish.CodeMissingRevisionToken
	case command.CodeKeyAlreadyRevised:
		return publish.CodeKeyAlreadyRevised
	case command.CodeBadTransition:
		return publish.CodeInvalidReportTypeTransition
	case command.CodeUnknownKey, command.CodeInvalidToken:
		return publish.CodeInvalidRevisionToken
	}
	return ""
}

// uploadToken is what the revision token an upload carries grants. The
// token key is not replicated, so the node that receives the upload opens
// the token and tells the state machine which keys it covers.
type uploadToken struct {
	present bool
	keys    []publish.RevisableKey
}

// openToken opens the upload's revision token; one that does not open is
// present but covers nothing (a stored key sent with it is refused as
// invalid_revision_token, new keys are stored, as in the reference).
func (s *Server) openToken(req *publish.Request) uploadToken {
	if req.RevisionToken == "" {
		return uploadToken{}
	}
	for _, k := range s.revisionKeys { // the current key, then those rotated out
		if keys, err := publish.OpenRevisionToken(k, req.RevisionToken); err == nil {
			return uploadToken{present: true, keys: keys}
		}
	}
	return uploadToken{present: true}
}

// covered lists the keys of the upload that the token covers with the same
// start and period.
func (t uploadToken) covered(keys []*fsmpb.Key) [][]byte {
	var out [][]byte
	for _, k := range keys {
		r := revisable(k)
		for _, allowed := range t.keys {
			if allowed == r {
				out = append(out, k.GetKeyData())
				break
			}
		}
	}
	return out
}

// answerToken is the revision token answered to an upload: it covers the
// upload's keys and those of the token it came with still within
// retention ("" for an upload without keys).
func (s *Server) answerToken(t uploadToken, keys []*fsmpb.Key) (string, error) {
	if len(keys) == 0 {
		return "", nil
	}
	upload := make([]publish.RevisableKey, len(keys))
	for i, k := range keys {
		upload[i] = revisable(k)
	}
	policy, _ := s.node.Policy()
	oldest := int32((s.cfg.Now().Unix() - policy.GetRetentionSeconds()) / 600)
	tok, err := publish.SealRevisionToken(s.revisionKeys[0], publish.TokenKeys(t.keys, upload, oldest))
	if err != nil {
		return "", &publish.Error{Status: http.StatusInternalServerError, Code: publish.CodeInternalError, Message: "revision token: " + err.Error()}
	}
	return tok, nil
}

// downgrade rewrites a publish into the version 1 form, for a region whose
// members do not all apply version 2 yet (a rolling upgrade in progress):
// the keys this node holds become revisions, which the token must cover.
// Builds of version 1 decide so from the receiving node's copy of the
// state, and refuse a stored key sent again with its report type.
func (s *Server) downgrade(p *fsmpb.Publish, tok uploadToken) error {
	p.AuthorityKid, p.HasToken, p.TokenKeys = "", false, nil
	if _, seen := s.node.FSM().SubmissionByID([16]byte(p.GetSubmissionId())); seen {
		p.ReviseOnly = false
		return nil // an exact retry: the state machine answers it as the first
	}
	covered := map[fsm.TEK]bool{}
	for _, k := range tok.covered(p.GetKeys()) {
		covered[fsm.TEK(k)] = true
	}
	var keys, revisions []*fsmpb.Key
	for _, k := range p.GetKeys() {
		switch data := fsm.TEK(k.GetKeyData()); {
		case !s.node.FSM().HasKey(data):
			if !p.GetReviseOnly() {
				keys = append(keys, k)
			}
		case !tok.present:
			return revisionError(publish.CodeMissingRevisionToken, "a key of this upload is already stored; revising it needs the revision token")
		case !covered[data]:
			return revisionError(publish.CodeInvalidRevisionToken, "the revision token does not cover a stored key of this upload")
		default:
			revisions = append(revisions, k)
		}
	}
	if len(keys)+len(revisions) == 0 {
		return errNothingToCommit // a first negative report: stored nowhere
	}
	p.Keys, p.Revisions, p.ReviseOnly = keys, revisions, false
	return nil
}

// errNothingToCommit: a downgraded upload changes nothing.
var errNothingToCommit = errors.New("nothing to commit")

func revisionError(code, msg string) error {
	return &publish.Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}

func revisable(k *fsmpb.Key) publish.RevisableKey {
	return publish.RevisableKey{Key: [16]byte(k.GetKeyData()), Start: k.GetRollingStart(), Period: k.GetRollingPeriod()}
}
