package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// uploadCode is the one-time code an upload carries instead of a
// certificate: a verification code, found by its keyed hashes under every
// code key (issued through /api/issue, the portal or /v1/codes), or while
// they live a code the previous release's /v1/codes issued (legacy).
type uploadCode struct {
	legacy *verify.LegacyCode
	hashes [][]byte
}

// parseUploadCode reads a verificationPayload as a code (false: it is not
// one, but a certificate or nothing).
func (s *Server) parseUploadCode(payload string) (uploadCode, bool) {
	if !verify.LooksLikeCode(payload) {
		return uploadCode{}, false
	}
	if c, err := verify.ParseLegacyCode(payload); err == nil {
		return uploadCode{legacy: &c}, true
	}
	return uploadCode{hashes: verify.Hashes(s.codeKeys, payload)}, true
}

// known tells whether this node's state holds the code.
func (s *Server) known(u uploadCode) bool {
	if u.legacy != nil {
		_, ok := s.node.FSM().Code(u.legacy.Lookup)
		return ok
	}
	return s.node.FSM().HasVerificationCode(u.hashes)
}

// authorization is what the code upload's submission id derives from and
// what its command names the code by.
func (s *Server) authorize(p *fsmpb.Publish, u uploadCode) []byte {
	p.CertificateDigest, p.AuthorityKid = nil, ""
	if u.legacy != nil {
		stored, _ := s.node.FSM().Code(u.legacy.Lookup)
		hash := s.legacyHash(*u.legacy, stored)
		p.CodeLookup, p.CodeHash = u.legacy.Lookup, hash[:]
		return hash[:]
	}
	p.VerificationCodeHashes = u.hashes
	return u.hashes[0]
}

// legacyHash is the keyed hash a code of the previous release is stored
// under: by the code key that made it, when the state holds it, else by
// the current key.
func (s *Server) legacyHash(code verify.LegacyCode, stored *fsmpb.Code) [32]byte {
	for _, k := range s.codeKeys {
		if h := code.Hash(k); stored != nil && subtle.ConstantTimeCompare(h[:], stored.GetHash()) == 1 {
			return h
		}
	}
	return code.Hash(s.codeKeys[0])
}

// submissionCodeHash is the hash under which a code upload's submission
// records a typed code, for a roll-back that names the code.
func (s *Server) submissionCodeHash(text string) ([]byte, error) {
	u, ok := s.parseUploadCode(text)
	switch {
	case !ok:
		return nil, errors.New("not a one-time code")
	case u.legacy != nil:
		stored, _ := s.node.FSM().Code(u.legacy.Lookup)
		hash := s.legacyHash(*u.legacy, stored)
		return hash[:], nil
	}
	for _, sub := range s.node.FSM().Submissions() {
		for _, h := range u.hashes {
			if bytes.Equal(sub.CodeHash, h) {
				return h, nil
			}
		}
	}
	return u.hashes[0], nil
}

// ProviderRequest registers a health care provider; Rotate gives a
// registered one a new token (its old one stops working).
type ProviderRequest struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Rotate bool   `json:"rotate,omitempty"`
}

// ProviderView is a provider in the admin API (never its token).
type ProviderView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Revoked bool      `json:"revoked"`
	Created time.Time `json:"created"`
}

// putProvider registers a provider (or, asked to rotate, gives it a new
// token) and returns its API token, the only time the token is shown. An
// id that is registered is refused without rotate, so that a typo does not
// void a lab's token.
func (s *Server) putProvider(c *gin.Context) {
	var req ProviderRequest
	if !bindStrict(c, &req) {
		return
	}
	if _, exists := s.node.FSM().Provider(req.ID); exists && !req.Rotate {
		fail(c, http.StatusConflict, "provider_exists", fmt.Sprintf("provider %q is registered; to give it a new token (its current one stops working), ask again with rotate", req.ID))
		return
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		failErr(c, err)
		return
	}
	token := req.ID + "." + hex.EncodeToString(secret)
	hash := sha256.Sum256([]byte(token))
	if err := command.PutProvider(c.Request.Context(), s.node, &fsmpb.Provider{Id: req.ID, Name: req.Name, TokenHash: hash[:]}); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": req.ID, "token": token})
}

func (s *Server) listProviders(c *gin.Context) {
	out := []ProviderView{}
	for _, p := range s.node.FSM().Providers() {
		out = append(out, ProviderView{ID: p.GetId(), Name: p.GetName(), Revoked: p.GetRevoked(), Created: time.Unix(p.GetCreatedUnix(), 0).UTC()})
	}
	c.JSON(http.StatusOK, gin.H{"providers": out})
}

func (s *Server) revokeProvider(c *gin.Context) {
	if err := command.RevokeProvider(c.Request.Context(), s.node, c.Param("id")); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"revoked": c.Param("id")})
}

// requireProvider admits requests with a valid, unrevoked provider token
// and stores the provider id in the context.
func (s *Server) requireProvider(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	id, _, _ := strings.Cut(token, ".")
	p, known := s.node.FSM().Provider(id)
	if ok && !known && s.node.CatchUp(c.Request.Context()) == nil { // added a moment ago elsewhere?
		p, known = s.node.FSM().Provider(id)
	}
	hash := sha256.Sum256([]byte(token))
	if !ok || !known || p.GetRevoked() || subtle.ConstantTimeCompare(hash[:], p.GetTokenHash()) != 1 {
		fail(c, http.StatusUnauthorized, "unauthorized", "a valid provider token is required: Authorization: Bearer <token>")
		return
	}
	c.Set("provider", id)
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxAdminBody)
}

// CodeRequest asks for a one-time code.
type CodeRequest struct {
	// ReportType is confirmed (default), likely, negative or user-report.
	ReportType string `json:"report_type"`
	// SymptomOnset is the day symptoms began (YYYY-MM-DD), if known.
	SymptomOnset string `json:"symptom_onset,omitempty"`
}

// CodeResponse carries a new code, grouped for reading aloud, and the
// uuid it is known by in the verification API and the portal.
type CodeResponse struct {
	Code      string    `json:"code"`
	UUID      string    `json:"uuid"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// issueCode is POST /v1/codes: a provider gets a one-time code for a
// patient, valid once until the policy's code lifetime ends. It is a
// verification code like any other: the app uploads with it directly or
// exchanges it at /api/verify.
func (s *Server) issueCode(c *gin.Context) {
	var req CodeRequest
	if c.Request.ContentLength != 0 && !bindStrict(c, &req) {
		return
	}
	if req.ReportType == "" {
		req.ReportType = publish.ReportTypeConfirmed
	}
	policy, _ := s.node.Policy()
	code, verr := s.issuer.IssueForApp(c.Request.Context(), c.GetString("provider"), "provider token",
		verify.IssueRequest{TestType: req.ReportType, SymptomDate: req.SymptomOnset}, time.Duration(policy.GetCodeTtlSeconds())*time.Second)
	if verr != nil {
		if verr.Status == http.StatusServiceUnavailable {
			c.Header("Retry-After", "1")
		}
		fail(c, verr.Status, verr.Code, verr.Message)
		return
	}
	c.JSON(http.StatusOK, CodeResponse{Code: code.Code, UUID: code.UUID, IssuedAt: code.Issued, ExpiresAt: code.Expires})
}

// codeWait is how long an upload waits for a one-time code this node has
// not seen yet (issued through another node, still on its way); every code
// refusal is answered this long after the request came, so that unknown,
// used, expired, locked and wrong codes take the same time.
const codeWait = 2 * time.Second

// awaitCode waits, up to codeWait, until the code is in the local state.
func (s *Server) awaitCode(ctx context.Context, u uploadCode) {
	deadline := time.Now().Add(codeWait)
	for !s.known(u) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
}

// codeGrant finds a usable code in the local state (the state machine
// checks again when it consumes the code). Unknown, locked, expired, wrong
// and nonce-bound codes are one refusal; a used code that matches goes on,
// for the state machine to answer an exact retry of the upload that used
// it.
func (s *Server) codeGrant(u uploadCode) (publish.CodeGrant, error) {
	if u.legacy != nil {
		return s.legacyGrant(*u.legacy)
	}
	c, long, ok := s.node.FSM().VerificationCodeFor(u.hashes)
	if !ok {
		return publish.CodeGrant{}, errCodeRefused
	}
	expires := c.GetExpiresUnix()
	if long {
		expires = c.GetLongExpiresUnix()
	}
	grant := publish.CodeGrant{ReportType: c.GetTestType(), SymptomOnsetInterval: uint32(verify.OnsetInterval(c.GetSymptomDay()))}
	switch {
	case len(c.GetNonceHash()) > 0:
		return publish.CodeGrant{}, errCodeRefused
	case c.GetClaimedUnix() != 0:
		return grant, errCodeUsed
	case s.cfg.Now().Unix() >= expires:
		return publish.CodeGrant{}, errCodeRefused
	}
	return grant, nil
}

// legacyGrant is codeGrant for a code of the previous release.
func (s *Server) legacyGrant(code verify.LegacyCode) (publish.CodeGrant, error) {
	stored, ok := s.node.FSM().Code(code.Lookup)
	if !ok {
		return publish.CodeGrant{}, errCodeRefused
	}
	hash := s.legacyHash(code, stored)
	matches := subtle.ConstantTimeCompare(hash[:], stored.GetHash()) == 1
	grant := publish.CodeGrant{ReportType: stored.GetReportType(), SymptomOnsetInterval: uint32(stored.GetSymptomOnsetInterval())}
	switch {
	case !matches || stored.GetFailures() >= fsm.MaxCodeFailures:
		return publish.CodeGrant{}, errCodeRefused
	case stored.GetUsedUnix() != 0:
		return grant, errCodeUsed
	case s.cfg.Now().Unix() >= stored.GetExpiresUnix():
		return publish.CodeGrant{}, errCodeRefused
	}
	return grant, nil
}

// errCodeRefused: the one answer to a code that does not admit an upload
// (unknown, wrong, locked, expired or used): it tells a stranger nothing
// about the state of a code.
var errCodeRefused = &publish.Error{Status: http.StatusUnauthorized, Code: publish.CodeVerificationCertificateInvalid,
	Message: "one-time code refused"}

// errCodeUsed: the code was used; the upload still goes to the state
// machine, which answers an exact retry of the upload that used it with
// the first outcome and refuses any other.
var errCodeUsed = errors.New("one-time code already used")
