package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// Issuing limits, as the reference's.
const (
	maxBatchIssue   = 10
	maxUUIDLen      = 64
	issueCollisions = 3
	defaultShortTTL = 15 * time.Minute
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
	resp, verr := s.IssueFor(c.Request.Context(), key.GetProvider(), key.GetName(), req)
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
	if len(req.Codes) == 0 || len(req.Codes) > maxBatchIssue {
		verifyFail(c, &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeTooMany, Message: "a batch holds 1 to 10 codes"})
		return
	}
	out := verify.BatchIssueResponse{Codes: make([]verify.IssueResponse, len(req.Codes)), Padding: publish.Padding()}
	status := 0
	key := callerKey(c)
	for i, item := range req.Codes {
		resp, verr := s.IssueFor(c.Request.Context(), key.GetProvider(), key.GetName(), item)
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

// IssueFor checks one request, issues its code pair for a provider and,
// given a phone and an SMS gateway, sends the long code (which then lives
// 24 hours). The issuing API and the portal (portal.Issuer) issue with it.
func (s *Server) IssueFor(ctx context.Context, provider, issuedBy string, req verify.IssueRequest) (verify.IssueResponse, *verify.Error) {
	rec, verr := s.codeRecord(provider, issuedBy, req)
	if verr != nil {
		return verify.IssueResponse{}, verr
	}
	v := s.cfg.Verification
	phone := ""
	if req.Phone != "" && v.SMS != nil {
		if phone, verr = checkPhone(req.Phone); verr != nil {
			return verify.IssueResponse{}, verr
		}
		rec.LongTtlSeconds = int64(v.longTTL() / time.Second)
	}
	got, short, long, verr := s.issueRecord(ctx, rec)
	if verr == nil && phone != "" {
		verr = s.sendCode(ctx, got, phone, short, long)
	}
	if verr != nil {
		return verify.IssueResponse{}, verr
	}
	return verify.IssueResponse{UUID: got.GetUuid(), Code: short, LongCode: long,
		ExpiresAt: verify.FormatExpiry(got.GetExpiresUnix()), ExpiresAtTimestamp: got.GetExpiresUnix(),
		LongExpiresAt: verify.FormatExpiry(got.GetLongExpiresUnix()), LongExpiresAtTimestamp: got.GetLongExpiresUnix()}, nil
}

// issueRecord draws a code pair for the record and commits it, drawing
// again when the values collide with a live code; it returns the record
// as stored and the two codes.
func (s *Server) issueRecord(ctx context.Context, rec *fsmpb.VerificationCode) (*fsmpb.VerificationCode, string, string, *verify.Error) {
	for range issueCollisions {
		short, long := verify.NewShortCode(verify.ShortCodeDigits), verify.NewLongCode(verify.LongCodeLength)
		rec.ShortHash, rec.LongHash = verify.Hash(s.codeKeys[0], short), verify.Hash(s.codeKeys[0], long)
		got, err := command.IssueVerificationCode(ctx, s.node, rec)
		var refused *command.Error
		switch {
		case errors.As(err, &refused) && refused.Code == command.CodeCodeCollision:
			continue
		case errors.As(err, &refused) && verify.FromRefusal(refused) != nil:
			return nil, "", "", verify.FromRefusal(refused)
		case err != nil:
			s.cfg.Logger.Error("issue verification code", "err", err)
			return nil, "", "", &verify.Error{Status: http.StatusServiceUnavailable, Code: verify.CodeUnavailable, Message: "region not ready, retry"}
		}
		return got, short, long, nil
	}
	return nil, "", "", &verify.Error{Status: http.StatusServiceUnavailable, Code: verify.CodeUnavailable, Message: "could not draw a free code, retry"}
}

// codeRecord checks an issue request by the reference's rules and builds
// the record to issue (hashes still to be drawn).
func (s *Server) codeRecord(provider, issuedBy string, req verify.IssueRequest) (*fsmpb.VerificationCode, *verify.Error) {
	now := s.cfg.Now()
	req.TestType = strings.ToLower(req.TestType) // the reference lowercases
	known := false
	for _, t := range verify.TestTypes {
		known = known || t == req.TestType
	}
	if !known {
		return nil, &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeInvalidTestType, Message: "testType: want confirmed, likely, negative or user-report"}
	}
	testDay, verr := verify.ParseDay(req.TestDate, req.TZOffset, now)
	if verr != nil {
		return nil, verr
	}
	symptomDay, verr := verify.ParseDay(req.SymptomDate, req.TZOffset, now)
	if verr != nil {
		return nil, verr
	}
	if len(req.UUID) > maxUUIDLen {
		return nil, &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeUnparsableRequest, Message: "uuid: at most 64 characters"}
	}
	uuid := req.UUID
	if uuid == "" {
		uuid = newUUID()
	}
	// No SMS gateway sends the long code yet: it lives as long as the
	// short one, as the reference's does without SMS.
	short := defaultShortTTL
	if v := s.cfg.Verification; v.ShortTTL > 0 {
		short = v.ShortTTL
	}
	long := short
	return &fsmpb.VerificationCode{Uuid: uuid, Provider: provider, IssuedBy: issuedBy, TestType: req.TestType,
		TestDay: testDay, SymptomDay: symptomDay,
		ShortTtlSeconds: int64(short / time.Second), LongTtlSeconds: int64(long / time.Second)}, nil
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
