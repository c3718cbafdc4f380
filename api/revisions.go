package api

import (
	"net/http"

	"github.com/covid-backend/covid-backend/command"
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

func revisable(k *fsmpb.Key) publish.RevisableKey {
	return publish.RevisableKey{Key: [16]byte(k.GetKeyData()), Start: k.GetRollingStart(), Period: k.GetRollingPeriod()}
}
