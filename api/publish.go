package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/publish"
)

// Context keys of an upload read by readUpload.
const (
	ctxUploadStart = "upload-start"
	ctxUploadBody  = "upload-body"
	ctxUploadReq   = "upload-request"
	ctxUploadCode  = "upload-code"
)

// readUpload reads an upload's body (bounded) before it takes one of the
// node's upload slots, and for a one-time code this node has not seen yet
// waits a moment for it to arrive by replication: a stranger's unknown
// codes hold no slot.
func (s *Server) readUpload(c *gin.Context) {
	c.Header("X-Api-Version", "v1")
	c.Set(ctxUploadStart, time.Now())
	if err := publish.CheckContentType(c.GetHeader("Content-Type")); err != nil {
		s.publishFail(c, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, publish.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.publishFail(c, &publish.Error{Status: http.StatusRequestEntityTooLarge, Code: publish.CodeBadRequest,
			Message: "request body exceeds 64000 bytes"})
		return
	}
	if err != nil {
		s.publishFail(c, &publish.Error{Status: http.StatusBadRequest, Code: publish.CodeBadRequest, Message: "read body: " + err.Error()})
		return
	}
	c.Set(ctxUploadBody, body)
	if c.GetHeader("X-Chaff") == "" {
		if !s.publishInService(c) {
			return
		}
		req, err := publish.DecodeRequest(body)
		if err != nil {
			s.publishFail(c, err)
			return
		}
		c.Set(ctxUploadReq, req)
		if code, ok := s.parseUploadCode(req.VerificationPayload); ok {
			c.Set(ctxUploadCode, code) // its keyed hashes, made once
			s.awaitCode(c.Request.Context(), code)
		}
	}
	c.Next()
}

// publish is POST /v1/publish, the GAEN key server publish API v1 (after
// readUpload).
func (s *Server) publish(c *gin.Context) {
	start := c.GetTime(ctxUploadStart)
	if c.GetHeader("X-Chaff") != "" {
		s.chaff(c, start, c.MustGet(ctxUploadBody).([]byte))
		return
	}
	resp, err := s.upload(c, c.MustGet(ctxUploadReq).(*publish.Request))
	if errors.Is(err, errCodeRefused) {
		sleepUntil(c.Request.Context(), start.Add(codeWait)) // all code refusals take as long
	}
	if err != nil {
		s.publishFail(c, err)
		return
	}
	resp.Padding = publish.Padding()
	c.JSON(http.StatusOK, resp)
	s.recent.Record(time.Since(start))
	s.metrics.uploads.WithLabelValues("accepted").Inc()
}

func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// chaff answers a decoy upload like a real one: same status, a body of the
// same shape and size (random padding), after as long as a recent real
// upload took; it stores nothing.
func (s *Server) chaff(c *gin.Context, start time.Time, body []byte) {
	t := time.NewTimer(time.Until(start.Add(s.chaffDelay())))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Request.Context().Done():
		return
	}
	resp := publish.Response{Padding: publish.Padding()}
	if req, err := publish.DecodeRequest(body); err == nil {
		resp.InsertedExposures = len(req.Keys)
		resp.RevisionToken = publish.DecoyRevisionToken(len(req.Keys), req.RevisionToken)
	}
	c.JSON(http.StatusOK, resp)
}

// upload authorizes and checks one upload, then hands all its keys to the
// state machine in one raft command, which stores the new ones and revises
// or leaves as they are the stored ones the revision token covers.
func (s *Server) upload(c *gin.Context, req *publish.Request) (publish.Response, error) {
	var v *publish.Verified
	var err error
	code, isCode := c.Value(ctxUploadCode).(uploadCode) // readUpload parsed it
	if isCode {
		v, err = s.verifyCode(c, req, code)
	} else {
		v, err = publish.Validate(req, s.node.FSM(), s.cfg.Now())
	}
	if err != nil {
		return publish.Response{}, err
	}
	tok := s.openToken(req)
	resp := publish.Response{Warnings: v.Warnings}
	if len(v.Keys) > 0 {
		var by *uploadCode
		if isCode {
			by = &code
		}
		if resp.InsertedExposures, err = s.commit(c, v, by, tok); err != nil {
			return publish.Response{}, err
		}
	}
	if resp.RevisionToken, err = s.answerToken(tok, v.Keys); err != nil {
		return publish.Response{}, err
	}
	if pf := v.PartialFailure(); pf != nil {
		resp.Code, resp.ErrorMessage = pf.Code, pf.Message
	}
	return resp, nil
}

// commit stores the verified upload through raft; it returns only after the
// commit, so an acknowledged key survives while a majority lives. The
// submission id comes from the upload itself, so that an exact retry is
// answered with the first outcome.
func (s *Server) commit(c *gin.Context, v *publish.Verified, code *uploadCode, tok uploadToken) (int, error) {
	p := &fsmpb.Publish{AppId: v.AppID, Issuer: v.Issuer, AuthorityKid: v.Kid, CertificateDigest: v.CertificateDigest[:],
		Traveler: v.Traveler, Keys: v.Keys, HasToken: tok.present, TokenKeys: tok.covered(v.Keys), ReviseOnly: v.StoreNothing}
	authorization := v.CertificateDigest[:]
	if code != nil {
		authorization = s.authorize(p, *code)
	}
	id := publish.SubmissionID(authorization, v.Keys, v.StoreNothing)
	p.SubmissionId = id[:]
	res, err := command.Publish(c.Request.Context(), s.node, p)
	if err != nil {
		return 0, s.commitError(c, err)
	}
	return int(res.GetInserted()), nil
}

// commitError turns the state machine's or raft's answer to an upload into
// the GAEN error apps expect.
func (s *Server) commitError(c *gin.Context, err error) error {
	var refused *command.Error
	switch {
	case errors.As(err, &refused) && isCodeRefusal(refused.Code):
		s.codeFailures.reserve(c.ClientIP())
		return errCodeRefused
	case errors.As(err, &refused) && refused.Code == command.CodeServiceEnded:
		return &publish.Error{Status: http.StatusGone, Code: publish.CodeServiceEnded, Message: refused.Message}
	case errors.As(err, &refused) && refused.Code == command.CodeAuthorityKey:
		return &publish.Error{Status: http.StatusUnauthorized, Code: publish.CodeVerificationCertificateInvalid,
			Message: "unable to validate diagnosis verification: " + refused.Message}
	case errors.As(err, &refused) && revisionCode(refused.Code) != "":
		return &publish.Error{Status: http.StatusBadRequest, Code: revisionCode(refused.Code), Message: refused.Message}
	case node.Retryable(err):
		return &publish.Error{Status: http.StatusServiceUnavailable, Code: publish.CodeInternalError,
			Message: retryMessage(err)}
	case err != nil:
		s.cfg.Logger.Error("publish commit failed", "err", err)
		return &publish.Error{Status: http.StatusInternalServerError, Code: publish.CodeInternalError, Message: "commit failed"}
	}
	return nil
}

func (s *Server) publishFail(c *gin.Context, err error) {
	var pe *publish.Error
	if !errors.As(err, &pe) {
		pe = &publish.Error{Status: http.StatusInternalServerError, Code: publish.CodeInternalError, Message: err.Error()}
	}
	if pe.Status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	resp := pe.Response()
	resp.Padding = publish.Padding()
	c.AbortWithStatusJSON(pe.Status, resp)
	s.metrics.uploads.WithLabelValues(pe.Code).Inc()
}

// isCodeRefusal tells the state machine's answers about a one-time code.
func isCodeRefusal(code command.Code) bool {
	return slices.Contains([]command.Code{command.CodeBadCode, command.CodeCodeUsed, command.CodeCodeExpired, command.CodeCodeLocked}, code)
}

// verifyCode checks the cheap things about a code upload before raft: the
// client is not over its failure budget, the code exists here and matches,
// the keys pass the rules under the code's grant. The state machine then
// checks the code again and consumes it with the insert, in one command.
// A refused code counts against the client, never against the code: a
// stranger who knows part of someone's code can neither lock nor use it.
func (s *Server) verifyCode(c *gin.Context, req *publish.Request, code uploadCode) (*publish.Verified, error) {
	ip := c.ClientIP()
	if s.codeFailures.exhausted(ip) {
		c.Header("Retry-After", "600")
		return nil, &publish.Error{Status: http.StatusTooManyRequests, Code: publish.CodeBadRequest,
			Message: "too many wrong one-time codes from this client; try later"}
	}
	grant, err := s.codeGrant(code)
	if errors.Is(err, errCodeUsed) {
		// An exact retry of the upload that used it is answered as the
		// first was; any other upload is refused. The state machine tells.
		err = nil
	}
	if err != nil {
		s.codeFailures.reserve(ip)
		return nil, err
	}
	return publish.ValidateWithCode(req, grant, s.cfg.Now())
}
