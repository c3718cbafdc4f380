package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// callerKey is the admin key of an issuing request.
func callerKey(c *gin.Context) *fsmpb.ApiKey { return c.MustGet(ctxAPIKey).(*fsmpb.ApiKey) }

// issue is POST /api/issue: one code pair for the caller's provider.
func (s *Server) issue(c *gin.Context) {
	var req verify.IssueRequest
	if !decodeVerify(c, &req, verify.CodeUnparsableRequest) {
		return
	}
	key := callerKey(c)
	resp, verr := s.issuer.Issue(c.Request.Context(), key.GetProvider(), key.GetName(), req)
	if verr != nil {
		verifyFail(c, verr)
		return
	}
	resp.Padding = publish.Padding()
	c.JSON(http.StatusOK, resp)
}

// batchIssue is POST /api/batch-issue: up to ten codes, each answered in
// place. The answer is 200 when any code was issued, else the first
// item's error status.
func (s *Server) batchIssue(c *gin.Context) {
	var req verify.BatchIssueRequest
	if !decodeVerify(c, &req, verify.CodeUnparsableRequest) {
		return
	}
	if len(req.Codes) == 0 || len(req.Codes) > verify.MaxBatchIssue {
		verifyFail(c, &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeTooMany, Message: "a batch holds 1 to 10 codes"})
		return
	}
	out := verify.BatchIssueResponse{Codes: make([]verify.IssueResponse, len(req.Codes)), Padding: publish.Padding()}
	status := 0
	key := callerKey(c)
	for i, item := range req.Codes {
		resp, verr := s.issuer.Issue(c.Request.Context(), key.GetProvider(), key.GetName(), item)
		if verr != nil {
			out.Codes[i] = verify.IssueResponse{ErrorFields: verify.ErrorOf(verr)}
			if status == 0 {
				status = verr.Status
			}
			continue
		}
		out.Codes[i], status = resp, http.StatusOK
	}
	if status != http.StatusOK {
		out.ErrorFields = out.Codes[0].ErrorFields
	}
	c.JSON(status, out)
}

// checkCodeStatus is POST /api/checkcodestatus: the state of one of the
// caller's provider's codes; another provider's code is not found.
func (s *Server) checkCodeStatus(c *gin.Context) {
	var req verify.CodeRequest
	if !decodeVerify(c, &req, verify.CodeUnparsableRequest) {
		return
	}
	code, ok := s.node.FSM().VerificationCode(req.UUID)
	if !ok || code.GetProvider() != callerKey(c).GetProvider() {
		verifyFail(c, &verify.Error{Status: http.StatusNotFound, Code: verify.CodeCodeNotFound, Message: "no such code"})
		return
	}
	c.JSON(http.StatusOK, codeStatus(code))
}

// expireCode is POST /api/expirecode: expire one of the caller's
// provider's unused codes now (recorded in the replicated state).
func (s *Server) expireCode(c *gin.Context) {
	var req verify.CodeRequest
	if !decodeVerify(c, &req, verify.CodeUnparsableRequest) {
		return
	}
	code, err := command.ExpireVerificationCode(c.Request.Context(), s.node, req.UUID, callerKey(c).GetProvider())
	if err != nil {
		s.verifyCommitError(c, err)
		return
	}
	c.JSON(http.StatusOK, codeStatus(code))
}

func codeStatus(code *fsmpb.VerificationCode) verify.CodeStatusResponse {
	return verify.CodeStatusResponse{Claimed: code.GetClaimedUnix() != 0, ExpiresAtTimestamp: code.GetExpiresUnix(),
		LongExpiresAtTimestamp: code.GetLongExpiresUnix(), Padding: publish.Padding()}
}
