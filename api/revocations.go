package api

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// RevokeRequest withdraws keys: exactly one of SubmissionID, Keys or Issuer.
type RevokeRequest struct {
	Reason string `json:"reason"`
	// SubmissionID (hex, from GET /v1/admin/submissions) rolls back one
	// submission.
	SubmissionID string `json:"submission_id,omitempty"`
	// Keys (base64) revokes single keys.
	Keys []string `json:"keys,omitempty"`
	// Issuer revokes everything the authority's certificates authorized
	// since Since (a compromised signer).
	Issuer string    `json:"issuer,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// Provider revokes everything the provider's codes authorized since
	// Since (a compromised provider).
	Provider string `json:"provider,omitempty"`
	// Code revokes the upload that one one-time code authorized.
	Code string `json:"code,omitempty"`
}

// Revocation is a kept revocation record.
type Revocation struct {
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason"`
	Selector string    `json:"selector"`
	Keys     uint32    `json:"keys"`
}

// SubmissionView is a submission in the admin API.
type SubmissionView struct {
	Index    uint32    `json:"index"`
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	AppID    string    `json:"app_id"`
	Issuer   string    `json:"issuer"`
	Provider string    `json:"provider,omitempty"`
	Traveler bool      `json:"traveler"`
	Keys     uint32    `json:"keys"`
}

func (s *Server) revoke(c *gin.Context) {
	var req RevokeRequest
	if !bindStrict(c, &req) {
		return
	}
	rv, err := req.proto(s.submissionCodeHash)
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	res, err := command.Revoke(c.Request.Context(), s.node, rv)
	if err != nil {
		failErr(c, err)
		return
	}
	protoJSON(c, http.StatusOK, res)
}

func (r RevokeRequest) proto(codeHash func(string) ([]byte, error)) (*fsmpb.Revoke, error) {
	if r.Reason == "" {
		return nil, errors.New("reason is required")
	}
	if utf8.RuneCountInString(r.Reason) > command.MaxReason {
		return nil, fmt.Errorf("reason: at most %d characters", command.MaxReason)
	}
	rv := &fsmpb.Revoke{Reason: r.Reason, Issuer: r.Issuer, Provider: r.Provider, SinceUnix: unixOrZero(r.Since)}
	if r.Code != "" {
		hash, err := codeHash(r.Code)
		if err != nil {
			return nil, fmt.Errorf("code: %w", err)
		}
		rv.CodeHash = hash
	}
	if r.SubmissionID != "" {
		id, err := hex.DecodeString(r.SubmissionID)
		if err != nil || len(id) != 16 {
			return nil, errors.New("submission_id: want 32 hex digits")
		}
		rv.SubmissionId = id
	}
	for _, k := range r.Keys {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(b) != fsm.KeyLen {
			return nil, errors.New("keys: want base64 of 16 bytes each, got " + k)
		}
		rv.Keys = append(rv.Keys, b)
	}
	return rv, nil
}

func (s *Server) listRevocations(c *gin.Context) {
	out := []Revocation{}
	for _, r := range s.node.FSM().Revocations() {
		out = append(out, Revocation{Time: time.Unix(r.GetTimeUnix(), 0).UTC(), Reason: r.GetReason(), Selector: r.GetSelector(), Keys: r.GetKeys()})
	}
	c.JSON(http.StatusOK, gin.H{"revocations": out})
}

func (s *Server) listSubmissions(c *gin.Context) {
	subs := s.node.FSM().Submissions()
	out := make([]SubmissionView, len(subs))
	for i, sub := range subs {
		out[i] = SubmissionView{Index: sub.Index, ID: hex.EncodeToString(sub.ID[:]), Time: time.Unix(sub.TimeUnix, 0).UTC(),
			AppID: sub.AppID, Issuer: sub.Issuer, Provider: sub.Provider, Traveler: sub.Traveler, Keys: sub.KeyCount}
	}
	c.JSON(http.StatusOK, gin.H{"submissions": out})
}
