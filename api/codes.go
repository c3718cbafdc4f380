package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
)

// codeKey derives a key of the codes' keyed hash from the admin token, for
// a region given no code key file: the key is never replicated, so a copy
// of the raft state alone does not reveal or confirm codes.
func codeKey(adminToken string) []byte {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("covid-backend one-time code key v1"))
	return m.Sum(nil)
}

// codeHash is the keyed hash a code is stored under: by the code key that
// made it, when the state holds it (an outstanding code stays valid while
// its key is among the code keys), else by the current key.
func (s *Server) codeHash(code publish.Code) [32]byte {
	stored, _ := s.node.FSM().Code(code.Lookup)
	return s.storedHash(code, stored)
}

// storedHash is codeHash for the stored code (nil: none).
func (s *Server) storedHash(code publish.Code, stored *fsmpb.Code) [32]byte {
	for _, k := range s.codeKeys {
		if h := code.Hash(k); stored != nil && subtle.ConstantTimeCompare(h[:], stored.GetHash()) == 1 {
			return h
		}
	}
	return code.Hash(s.codeKeys[0])
}

// ProviderRequest registers a health care provider.
type ProviderRequest struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ProviderView is a provider in the admin API (never its token).
type ProviderView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Revoked bool      `json:"revoked"`
	Created time.Time `json:"created"`
}

// putProvider registers a provider (or gives it a new token) and returns
// its API token, the only time the token is shown.
func (s *Server) putProvider(c *gin.Context) {
	var req ProviderRequest
	if !bindStrict(c, &req) {
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

// CodeResponse carries a new code, grouped for reading aloud.
type CodeResponse struct {
	Code      string    `json:"code"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// issueCode is POST /v1/codes: a provider gets a one-time code for a
// patient, valid once, until it expires.
func (s *Server) issueCode(c *gin.Context) {
	var req CodeRequest
	if c.Request.ContentLength != 0 && !bindStrict(c, &req) {
		return
	}
	grant, err := req.grant()
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	for range 8 { // a lookup collision draws another code
		code, err := publish.NewCode()
		if err != nil {
			failErr(c, err)
			return
		}
		hash := code.Hash(s.codeKeys[0])
		policy, _ := s.node.Policy()
		res, err := command.IssueCode(c.Request.Context(), s.node, &fsmpb.Code{Lookup: code.Lookup, Hash: hash[:],
			Provider: c.GetString("provider"), TtlSeconds: policy.GetCodeTtlSeconds(), ReportType: grant.ReportType,
			SymptomOnsetInterval: int32(grant.SymptomOnsetInterval)})
		var refused *command.Error
		if errors.As(err, &refused) && refused.Code == command.CodeCodeCollision {
			continue
		}
		if err != nil {
			failErr(c, err)
			return
		}
		c.JSON(http.StatusOK, CodeResponse{Code: code.Display(), IssuedAt: time.Unix(res.GetIssuedUnix(), 0).UTC(),
			ExpiresAt: time.Unix(res.GetExpiresUnix(), 0).UTC()})
		return
	}
	fail(c, http.StatusServiceUnavailable, "internal_error", "could not draw an unused code")
}

func (r CodeRequest) grant() (publish.CodeGrant, error) {
	g := publish.CodeGrant{ReportType: r.ReportType}
	if g.ReportType == "" {
		g.ReportType = publish.ReportTypeConfirmed
	}
	switch g.ReportType {
	case publish.ReportTypeConfirmed, publish.ReportTypeLikely, publish.ReportTypeNegative, publish.ReportTypeUserReport:
	default:
		return g, errors.New("report_type: want confirmed, likely, negative or user-report")
	}
	if r.SymptomOnset != "" {
		day, err := time.Parse(time.DateOnly, r.SymptomOnset)
		if err != nil {
			return g, errors.New("symptom_onset: want YYYY-MM-DD")
		}
		g.SymptomOnsetInterval = uint32(day.Unix() / 600)
	}
	return g, nil
}

// codeWait is how long an upload waits for a one-time code this node has
// not seen yet (issued through another node, still on its way); every code
// refusal is answered this long after the request came, so that unknown,
// used, expired, locked and wrong codes take the same time.
const codeWait = 2 * time.Second

// awaitCode waits, up to codeWait, until the code with this lookup is in
// the local state.
func (s *Server) awaitCode(ctx context.Context, lookup uint32) {
	deadline := time.Now().Add(codeWait)
	for {
		if _, ok := s.node.FSM().Code(lookup); ok || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// codeGrant finds a usable code in the local state (the state machine
// checks again when it consumes the code). Unknown, locked, expired and
// wrong codes are one refusal; a used code that matches goes on, for the
// state machine to answer an exact retry of the upload that used it.
func (s *Server) codeGrant(code publish.Code) (publish.CodeGrant, error) {
	stored, ok := s.node.FSM().Code(code.Lookup)
	if !ok {
		return publish.CodeGrant{}, errCodeRefused
	}
	hash := s.storedHash(code, stored)
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
