package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/sms"
	"github.com/covid-backend/covid-backend/verify"
)

// Verification configures the verification service a region runs for
// existing GAEN apps: the keys that sign its tokens and certificates (the
// first of each signs, all verify) and the issuer its JWTs name.
type Verification struct {
	// Issuer is the token issuer and the certificates' iss; Audience the
	// certificates' aud (this region's own health authority).
	Issuer, Audience string
	TokenKeys        []verify.SigningKey
	CertKeys         []verify.SigningKey
	// ShortTTL is how long a code lives (default 15 minutes; at most an
	// hour). Without an SMS gateway the long code lives as long.
	ShortTTL time.Duration
	// SMS sends long codes (nil: no SMS; user reports are then not
	// offered); LongTTL is how long a code sent by SMS lives (default 24
	// hours); SMSTemplate is the message, with [code], [longcode],
	// [region] and [hours] filled in.
	SMS         sms.Sender
	LongTTL     time.Duration
	SMSTemplate string
	Region      string
	// Phones are the numbers codes are sent to, and how many an hour.
	Phones verify.Phones
	// StatsThreshold is the smallest count the statistics show as it is,
	// in the stats API and the portal (0: stats.DefaultThreshold).
	StatsThreshold int
}

// Context keys of the verification routes.
const (
	ctxAPIKey = "verify.apikey"
	ctxBody   = "verify.body"
	// ctxVerifyStart is when readVerifyBody began, which a decoy's answer
	// and a refusal that must look alike wait from.
	ctxVerifyStart = "verify.start"
)

// maxVerifyBody is the largest body the device and issuing API read, as
// the reference (apps pad requests to several KB).
const maxVerifyBody = 64_000

// verificationRoutes registers the device API (device keys) and the
// issuing API (admin keys of a provider).
//
// A decoy (X-Chaff) spends none of its client's allowance for real
// requests, as the reference limits after its chaff handler; decoys count
// against an allowance of their own, as large, so that a flood of them is
// bounded per client too (each costs a signature). A decoy still needs a
// valid key, reads at most maxVerifyBody and changes nothing
// (readVerifyBody).
func (s *Server) verificationRoutes(r gin.IRoutes, limit gin.HandlerFunc) {
	limit = chaffApart(limit, rateLimit(newIPLimiter(s.cfg.Limits.PublishRate, s.cfg.Limits.PublishBurst, s.cfg.Now)))
	device := []gin.HandlerFunc{limit, s.admittedVerify, s.requireAPIKey(fsm.APIKeyDevice), s.readVerifyBody, s.inService}
	r.POST("/api/verify", append(device, s.deviceVerify)...)
	r.POST("/api/certificate", append(device, s.certificate)...)
	r.POST("/api/user-report", append(device, s.userReport)...)
	issuing := []gin.HandlerFunc{limit, s.admittedVerify, s.requireAPIKey(fsm.APIKeyAdmin), s.readVerifyBody}
	r.POST("/api/issue", append(issuing, s.inService, s.issue)...)
	r.POST("/api/batch-issue", append(issuing, s.inService, s.batchIssue)...)
	// A code's status is a consistent read always: a lab checks a code right
	// after an app verified it, maybe through another node.
	r.POST("/api/checkcodestatus", append(issuing, s.consistentRead, s.checkCodeStatus)...)
	r.POST("/api/expirecode", append(issuing, s.expireCode)...)
	s.statsRoutes(r, limit)
}

// chaffApart runs real for real requests and decoy for decoys.
func chaffApart(real, decoy gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetHeader("X-Chaff") == "" {
			real(c)
		} else {
			decoy(c)
		}
	}
}

// verifyFail answers an error of the verification protocol: its status,
// error fields and padding; 429 and 503 with Retry-After.
func verifyFail(c *gin.Context, e *verify.Error) {
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	c.AbortWithStatusJSON(e.Status, struct {
		verify.ErrorFields
		Padding string `json:"padding"`
	}{verify.ErrorOf(e), publish.Padding()})
}

// requireAPIKey admits a request whose X-API-Key is a live key of the
// kind; an admin key's provider must be active. Anything else is 401. A
// key this node does not know yet may have been created a moment ago
// through another node: before it refuses, the node catches up with what
// the leader has applied (node.CatchUp).
func (s *Server) requireAPIKey(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		hash := sha256.Sum256([]byte(c.GetHeader("X-API-Key")))
		k, ok := s.apiKey(hash, kind)
		if !ok && s.node.CatchUp(c.Request.Context()) == nil {
			k, ok = s.apiKey(hash, kind)
		}
		if !ok || k.GetRevoked() || k.GetKind() != kind || s.cfg.Verification == nil {
			verifyFail(c, &verify.Error{Status: http.StatusUnauthorized, Code: verify.CodeUnauthorized, Message: "invalid API key"})
			return
		}
		c.Set(ctxAPIKey, k)
	}
}

// consistentRead makes the read that follows linearizable, always: for
// low-volume reads whose callers act on the answer at once
// (/api/checkcodestatus right after a verify through another node).
func (s *Server) consistentRead(c *gin.Context) {
	if err := s.node.ConsistentRead(c.Request.Context()); err != nil {
		verifyFail(c, &verify.Error{Status: http.StatusServiceUnavailable, Code: verify.CodeUnavailable, Message: "region not ready, retry"})
		return
	}
	c.Next()
}

// apiKey finds a key of the kind; a key of a provider (admin, or stats of
// one provider) only while that provider is active.
func (s *Server) apiKey(hash [32]byte, kind string) (*fsmpb.ApiKey, bool) {
	k, ok := s.node.FSM().APIKey(hash)
	if ok && (kind == fsm.APIKeyAdmin || k.GetProvider() != "") {
		p, found := s.node.FSM().Provider(k.GetProvider())
		ok = found && !p.GetRevoked()
	}
	return k, ok
}

// readVerifyBody takes a JSON body of at most 64,000 bytes; a decoy
// (X-Chaff) is answered after a realistic delay, with nothing changed.
func (s *Server) readVerifyBody(c *gin.Context) {
	start := time.Now()
	c.Set(ctxVerifyStart, start)
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/json" {
		verifyFail(c, &verify.Error{Status: http.StatusUnsupportedMediaType, Code: verify.CodeUnparsableRequest,
			Message: "content type must be application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxVerifyBody))
	if err != nil {
		verifyFail(c, &verify.Error{Status: http.StatusRequestEntityTooLarge, Code: verify.CodeUnparsableRequest,
			Message: fmt.Sprintf("request body over %d bytes or unreadable", maxVerifyBody)})
		return
	}
	if c.GetHeader("X-Chaff") != "" {
		sleepUntil(c.Request.Context(), start.Add(s.chaffDelay()))
		c.AbortWithStatusJSON(http.StatusOK, s.decoyAnswer(c, body))
		return
	}
	c.Set(ctxBody, body)
}

// decodeVerify decodes the request body into out; a body that is not
// JSON of that shape is the given error code.
func decodeVerify(c *gin.Context, out any, code string) bool {
	if err := json.Unmarshal(c.MustGet(ctxBody).([]byte), out); err != nil {
		verifyFail(c, &verify.Error{Status: http.StatusBadRequest, Code: code, Message: "request: " + err.Error()})
		return false
	}
	return true
}

// verifyCommitError maps what a verification command's commit returned.
func (s *Server) verifyCommitError(c *gin.Context, err error) {
	var refused *command.Error
	if errors.As(err, &refused) {
		if e := verify.FromRefusal(refused); e != nil {
			verifyFail(c, e)
			return
		}
	}
	if node.Retryable(err) {
		verifyFail(c, &verify.Error{Status: http.StatusServiceUnavailable, Code: verify.CodeUnavailable, Message: retryMessage(err)})
		return
	}
	s.cfg.Logger.Error("verification commit failed", "path", c.FullPath(), "err", err)
	verifyFail(c, &verify.Error{Status: http.StatusInternalServerError, Code: verify.CodeInternal, Message: "internal error"})
}

// deviceVerify is POST /api/verify: it uses the code up and creates its
// token in one raft command, so that one code gives one token however
// many nodes are asked at once.
func (s *Server) deviceVerify(c *gin.Context) {
	start := time.Now()
	var req verify.VerifyRequest
	if !decodeVerify(c, &req, verify.CodeUnparsableRequest) {
		return
	}
	accept, verr := verify.AcceptSet(req.Accept)
	if verr != nil {
		verifyFail(c, verr)
		return
	}
	ip := c.ClientIP()
	if s.codeFailures.exhausted(ip) {
		c.Header("Retry-After", "600")
		c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": "too many wrong codes from this client; try later",
			"errorCode": "too_many_requests", "error_code": "too_many_requests", "padding": publish.Padding()})
		return
	}
	// A guess at an unknown code costs no raft entry: the code must be
	// here first (awaited a moment, in case it was just issued elsewhere).
	hashes := verify.Hashes(s.codeKeys, req.Code)
	if !s.awaitVerificationCode(c.Request.Context(), hashes) {
		s.codeFailures.reserve(ip)
		verifyFail(c, verify.FromRefusal(&command.Error{Code: command.CodeCodeInvalid}))
		return
	}
	v := s.cfg.Verification
	var nonceHash []byte
	if req.Nonce != "" {
		nonce, _ := verify.DecodeNonce(req.Nonce)
		h := sha256.Sum256(nonce)
		nonceHash = h[:]
	}
	tok, err := command.ClaimCode(c.Request.Context(), s.node, &fsmpb.ClaimCode{Hashes: hashes, Accept: accept,
		TokenId: verify.NewTokenID(), TokenTtlSeconds: int64(verify.TokenTTL / time.Second), NonceHash: nonceHash})
	var refused *command.Error
	if errors.As(err, &refused) && (refused.Code == command.CodeCodeInvalid || refused.Code == command.CodeCodeExpired) {
		s.codeFailures.reserve(ip) // failures count against the client, never the code
		// A used or expired code is refused after as long as an unknown
		// one (awaitVerificationCode), so the time tells nothing.
		sleepUntil(c.Request.Context(), start.Add(codeWait))
	}
	if err != nil {
		s.verifyCommitError(c, err)
		return
	}
	resp := verify.VerifyResponse{TestType: tok.GetTestType(), SymptomDate: verify.FormatDay(tok.GetSymptomDay()),
		TestDate: verify.FormatDay(tok.GetTestDay()), Padding: publish.Padding()}
	resp.Token, err = verify.SignToken(v.TokenKeys[0], v.Issuer, verify.TokenClaims{ID: tok.GetId(), TestType: resp.TestType,
		SymptomDate: resp.SymptomDate, TestDate: resp.TestDate}, time.Unix(tok.GetExpiresUnix(), 0).Add(-verify.TokenTTL))
	if err != nil {
		s.verifyCommitError(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

// certificate is POST /api/certificate: it uses the token up (one raft
// command) and signs the certificate the region's /v1/publish accepts.
func (s *Server) certificate(c *gin.Context) {
	var req verify.CertificateRequest
	if !decodeVerify(c, &req, verify.CodeTokenInvalid) {
		return
	}
	v, now := s.cfg.Verification, s.cfg.Now()
	id, verr := verify.ParseToken(req.Token, v.TokenKeys, v.Issuer, now)
	if verr == nil {
		verr = verify.CheckEKeyHMAC(req.EKeyHMAC)
	}
	if verr != nil {
		verifyFail(c, verr)
		return
	}
	tok, err := command.ClaimToken(c.Request.Context(), s.node, id)
	if err != nil {
		s.verifyCommitError(c, err)
		return
	}
	cert, err := verify.SignCertificate(v.CertKeys[0], verify.CertificateClaims{Issuer: v.Issuer, Audience: v.Audience,
		TestType: tok.GetTestType(), EKeyHMAC: req.EKeyHMAC, SymptomDay: tok.GetSymptomDay()}, now)
	if err != nil {
		s.verifyCommitError(c, err)
		return
	}
	c.JSON(http.StatusOK, verify.CertificateResponse{Certificate: cert, Padding: publish.Padding()})
}

// awaitVerificationCode waits, up to codeWait, until a code with one of
// the hashes is in the local state.
func (s *Server) awaitVerificationCode(ctx context.Context, hashes [][]byte) bool {
	deadline := time.Now().Add(codeWait)
	for !s.node.FSM().HasVerificationCode(hashes) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
