package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/covid-backend/covid-backend/publish"
)

// SigningKey is an ECDSA P-256 key of the service and the kid its JWTs
// name it by. Every node of a region has the same keys; the first of a
// list signs, all verify, so that a rotation leaves what is out valid.
type SigningKey struct {
	Kid string
	// Private is the P-256 private key, here or in an HSM (crypto11).
	Private crypto.Signer
}

// Public is the key's public half.
func (k SigningKey) Public() *ecdsa.PublicKey {
	pub, _ := k.Private.Public().(*ecdsa.PublicKey)
	return pub
}

// Lifetimes of what the device API hands out, as the reference's.
const (
	TokenTTL       = 24 * time.Hour
	CertificateTTL = 15 * time.Minute
	certBackdate   = 5 * time.Second
)

// NewTokenID draws a token's jti.
func NewTokenID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("verify: the system random source failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenClaims are what a token says: its id and its subject,
// testtype.symptomDate.testDate.
type TokenClaims struct {
	ID, TestType, SymptomDate, TestDate string
}

// SignToken makes the token /api/verify answers: ES256, iss = aud = issuer,
// exp 24 h on. Apps treat it as opaque; the region keeps it single use.
func SignToken(key SigningKey, issuer string, c TokenClaims, now time.Time) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer: issuer, Audience: jwt.ClaimStrings{issuer}, ID: c.ID,
		Subject:  strings.Join([]string{c.TestType, c.SymptomDate, c.TestDate}, "."),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(TokenTTL)),
	})
	t.Header["kid"] = key.Kid
	signing, err := t.SigningString()
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	s, err := publish.SignES256(key.Private, signing)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// ParseToken checks a token's signature (by kid, among keys), issuer,
// audience and expiry, and returns its id: anything wrong is 400
// token_invalid.
func ParseToken(raw string, keys []SigningKey, issuer string, now time.Time) (string, *Error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if k.Kid == kid {
				return k.Public(), nil
			}
		}
		return nil, errors.New("unknown kid")
	}, jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithIssuer(issuer), jwt.WithAudience(issuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil || claims.ID == "" {
		return "", fail(http.StatusBadRequest, CodeTokenInvalid, "verification token invalid")
	}
	return claims.ID, nil
}

// CheckEKeyHMAC checks the ekeyhmac of /api/certificate: base64 in any
// alphabet, padded or not, of 32 bytes (400 hmac_invalid otherwise). The
// certificate carries it verbatim.
func CheckEKeyHMAC(ekeyhmac string) *Error {
	if b, err := publish.DecodeBase64(ekeyhmac); err != nil || len(b) != 32 {
		return fail(http.StatusBadRequest, CodeHMACInvalid, "ekeyhmac: want base64 of 32 bytes")
	}
	return nil
}

// CertificateClaims are what a certificate says.
type CertificateClaims struct {
	Issuer, Audience, TestType, EKeyHMAC string
	SymptomDay                           int32
}

// SignCertificate makes the verification certificate /api/certificate
// answers, as the reference: ES256, header kid, iat = nbf = now - 5 s, exp =
// now + 15 min, reportType, symptomOnsetInterval when known, tekmac = the
// request's ekeyhmac verbatim.
func SignCertificate(key SigningKey, c CertificateClaims, now time.Time) (string, error) {
	at := now.Add(-certBackdate)
	return publish.SignCertificate(key.Private, publish.Claims{
		Issuer: c.Issuer, Audience: c.Audience, Kid: key.Kid, ReportType: c.TestType,
		SymptomOnsetInterval: OnsetInterval(c.SymptomDay), TEKMAC: c.EKeyHMAC,
		IssuedAt: at, NotBefore: at, TTL: now.Add(CertificateTTL).Sub(at),
	})
}
