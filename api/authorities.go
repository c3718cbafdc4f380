package api

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// AuthorityKey is one verification key of a health authority in the admin API.
type AuthorityKey struct {
	Kid          string    `json:"kid"`
	PublicKeyPEM string    `json:"public_key_pem"`
	ValidFrom    time.Time `json:"valid_from,omitzero"`
	ValidThrough time.Time `json:"valid_through,omitzero"`
}

// Authority is a health authority in the admin API.
type Authority struct {
	Issuer   string         `json:"issuer"`
	Audience string         `json:"audience"`
	AppIDs   []string       `json:"app_ids"`
	Keys     []AuthorityKey `json:"keys"`
	// JWKSURL, instead of keys, names the set the authority's keys come
	// from: the node fetches it at once and the leader again on a schedule;
	// a key gone from it verifies for JWKSGraceSeconds more (default a day).
	JWKSURL          string `json:"jwks_url,omitempty"`
	JWKSGraceSeconds int64  `json:"jwks_grace_seconds,omitempty"`
}

func (s *Server) listAuthorities(c *gin.Context) {
	out := []Authority{}
	for _, a := range s.node.FSM().Authorities() {
		out = append(out, authorityFromProto(a))
	}
	c.JSON(http.StatusOK, gin.H{"authorities": out})
}

func (s *Server) putAuthority(c *gin.Context) {
	var req Authority
	if !bindStrict(c, &req) {
		return
	}
	if req.JWKSURL != "" && len(req.Keys) == 0 {
		if !s.keysFromJWKS(c, &req) {
			return
		}
	}
	pa, err := req.proto()
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if err := command.PutAuthority(c.Request.Context(), s.node, pa); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"issuer": req.Issuer})
}

// keysFromJWKS fills an authority's keys from its JWKS URL, fetched now,
// so that a URL that does not serve a key set is refused at once (422).
func (s *Server) keysFromJWKS(c *gin.Context, req *Authority) bool {
	keys, err := s.cfg.JWKS.Fetch(c.Request.Context(), req.JWKSURL)
	if err != nil {
		fail(c, http.StatusUnprocessableEntity, "jwks_unusable", err.Error())
		return false
	}
	for _, k := range keys {
		req.Keys = append(req.Keys, AuthorityKey{Kid: k.Kid, PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.DER}))})
	}
	return true
}

func (s *Server) removeAuthority(c *gin.Context) {
	if err := command.RemoveAuthority(c.Request.Context(), s.node, c.Param("issuer"), c.Query("kid")); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"removed": c.Param("issuer"), "kid": c.Query("kid")})
}

func (a Authority) proto() (*fsmpb.Authority, error) {
	if a.Issuer == "" || a.Audience == "" || len(a.AppIDs) == 0 || len(a.Keys) == 0 {
		return nil, errors.New("issuer, audience, app_ids and keys are required")
	}
	out := &fsmpb.Authority{Issuer: a.Issuer, Audience: a.Audience, AppIds: a.AppIDs, JwksUrl: a.JWKSURL, JwksGraceSeconds: a.JWKSGraceSeconds}
	for _, k := range a.Keys {
		der, err := parseP256PEM(k.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Kid, err)
		}
		if !k.ValidThrough.IsZero() && !k.ValidThrough.After(k.ValidFrom) {
			return nil, fmt.Errorf("key %q: valid_through must be after valid_from", k.Kid)
		}
		out.Keys = append(out.Keys, &fsmpb.AuthorityKey{
			Kid: k.Kid, PublicKeyDer: der, ValidFromUnix: unixOrZero(k.ValidFrom), ValidThroughUnix: unixOrZero(k.ValidThrough),
		})
	}
	return out, nil
}

// parseP256PEM checks that the PEM holds an ECDSA P-256 public key (the
// only kind ES256 certificates are signed with) and returns its DER.
func parseP256PEM(s string) ([]byte, error) {
	pub, err := export.ParsePublicKeyPEM([]byte(s))
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(pub)
}

func authorityFromProto(a *fsmpb.Authority) Authority {
	out := Authority{Issuer: a.GetIssuer(), Audience: a.GetAudience(), AppIDs: a.GetAppIds(), JWKSURL: a.GetJwksUrl(), JWKSGraceSeconds: a.GetJwksGraceSeconds()}
	for _, k := range a.GetKeys() {
		out.Keys = append(out.Keys, AuthorityKey{
			Kid:          k.GetKid(),
			PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.GetPublicKeyDer()})),
			ValidFrom:    timeOrZero(k.GetValidFromUnix()),
			ValidThrough: timeOrZero(k.GetValidThroughUnix()),
		})
	}
	return out
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(u int64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(u, 0).UTC()
}
