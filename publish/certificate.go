package publish

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Report types a verification certificate may carry in its reportType claim.
const (
	ReportTypeConfirmed  = "confirmed"
	ReportTypeLikely     = "likely"
	ReportTypeNegative   = "negative"
	ReportTypeUserReport = "user-report"
)

const (
	// certLeeway is the clock skew tolerated on iat, nbf and exp. The
	// reference checks them exactly; a minute keeps certificates issued by a
	// verification server with a slightly fast clock usable, while still
	// being small against their 15-minute life.
	certLeeway = time.Minute
	// defaultCertTTL is how long SignCertificate makes a certificate live
	// when Claims.TTL is zero: the reference verification server's default.
	defaultCertTTL = 15 * time.Minute
	// certBackdate is how far before iat the reference signer sets nbf.
	certBackdate = 5 * time.Second
)

// Authorities is what validation needs from the replicated state: the
// health authorities whose certificates admit uploads, and which app ids
// (healthAuthorityID values) any of them lists. *fsm.FSM implements it.
type Authorities interface {
	// Authority returns the health authority whose JWT issuer is issuer.
	Authority(issuer string) (*fsmpb.Authority, bool)
	// AppKnown reports whether any health authority lists the app id.
	AppKnown(appID string) bool
}

// Claims are the contents of a verification certificate, for SignCertificate.
type Claims struct {
	Issuer, Audience, Kid, ReportType string
	// SymptomOnsetInterval is optional (0: absent).
	SymptomOnsetInterval int32
	// TEKMAC is the tekmac of the keys the certificate admits (see TEKMAC).
	TEKMAC string
	// IssuedAt is required; nbf is NotBefore, or 5 s before IssuedAt when
	// NotBefore is zero.
	IssuedAt, NotBefore time.Time
	// TTL is the time from IssuedAt to exp; 0 means 15 minutes.
	TTL time.Duration
}

// certHeader and certPayload give the JSON of a certificate in the field
// order of the reference signer, so that SignCertificate produces the same
// text as the golden certificate in testdata/gaen.
type certHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

type certPayload struct {
	ReportType           string `json:"reportType"`
	SymptomOnsetInterval uint32 `json:"symptomOnsetInterval,omitempty"`
	TEKMAC               string `json:"tekmac"`
	Audience             string `json:"aud"`
	ExpiresAt            int64  `json:"exp"`
	IssuedAt             int64  `json:"iat"`
	Issuer               string `json:"iss"`
	NotBefore            int64  `json:"nbf"`
}

// SignCertificate signs a verification certificate as the reference
// certificate signer does (ES256, header kid, nbf = iat - 5 s, exp = iat +
// TTL), for development uploads and tests that need certificates this
// server accepts.
func SignCertificate(key crypto.Signer, c Claims) (string, error) {
	switch {
	case key == nil || !isP256(key.Public()):
		return "", errors.New("sign certificate: ES256 needs an ECDSA P-256 key")
	case c.Issuer == "" || c.Audience == "" || c.Kid == "":
		return "", errors.New("sign certificate: issuer, audience and kid are required")
	case !validReportType(c.ReportType):
		return "", fmt.Errorf("sign certificate: invalid report type %q", c.ReportType)
	case c.SymptomOnsetInterval < 0:
		return "", fmt.Errorf("sign certificate: negative symptom onset interval %d", c.SymptomOnsetInterval)
	case c.TEKMAC == "":
		return "", errors.New("sign certificate: tekmac is required")
	case c.IssuedAt.IsZero():
		return "", errors.New("sign certificate: issued-at time is required")
	case c.TTL < 0:
		return "", fmt.Errorf("sign certificate: negative ttl %v", c.TTL)
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = defaultCertTTL
	}
	iat := c.IssuedAt.Unix()
	nbf := c.IssuedAt.Add(-certBackdate)
	if !c.NotBefore.IsZero() {
		nbf = c.NotBefore
	}
	payload := certPayload{
		ReportType:           c.ReportType,
		SymptomOnsetInterval: uint32(c.SymptomOnsetInterval),
		TEKMAC:               c.TEKMAC,
		Audience:             c.Audience,
		ExpiresAt:            c.IssuedAt.Add(ttl).Unix(),
		IssuedAt:             iat,
		Issuer:               c.Issuer,
		NotBefore:            nbf.Unix(),
	}
	return signJWT(key, c.Kid, payload)
}

// signJWT signs an ES256 JWT with the given kid and payload.
func signJWT(key crypto.Signer, kid string, payload any) (string, error) {
	header, err := json.Marshal(certHeader{Alg: jwt.SigningMethodES256.Alg(), Kid: kid, Typ: "JWT"})
	if err != nil {
		return "", fmt.Errorf("sign certificate: encoding header: %w", err)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("sign certificate: encoding claims: %w", err)
	}
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(body)
	token, err := SignES256(key, signing)
	if err != nil {
		return "", fmt.Errorf("sign certificate: %w", err)
	}
	return token, nil
}

func isP256(pub crypto.PublicKey) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && k.Curve == elliptic.P256()
}

func validReportType(t string) bool {
	switch t {
	case ReportTypeConfirmed, ReportTypeLikely, ReportTypeNegative, ReportTypeUserReport:
		return true
	}
	return false
}

// verifiedCertificate is what a certificate that passed every check says.
type verifiedCertificate struct {
	authority  *fsmpb.Authority
	kid        string
	reportType string
	// onset is the symptomOnsetInterval claim (0: absent), still to be
	// checked for plausibility.
	onset uint32
}

// certClaims is how a certificate's claims are parsed.
type certClaims struct {
	ReportType           string `json:"reportType"`
	SymptomOnsetInterval uint32 `json:"symptomOnsetInterval,omitempty"`
	TEKMAC               string `json:"tekmac"`
	jwt.RegisteredClaims
}

// verifyCertificate checks the request's verification certificate as the
// reference does: alg ES256; kid present and naming a key of the issuer's
// authority valid now; iss known; aud equal to the authority's audience;
// signature; iat, nbf and exp (exp is required here, the reference accepted
// a certificate without one); then the app id allowed by that authority, the
// report type and the tekmac of the request's keys and hmacKey.
func verifyCertificate(req *Request, auth Authorities, now time.Time) (*verifiedCertificate, error) {
	if req.VerificationPayload == "" {
		return nil, errors.New("missing verification certificate")
	}
	var authority *fsmpb.Authority
	var keyID string
	claims := &certClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithLeeway(certLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
	)
	_, err := parser.ParseWithClaims(req.VerificationPayload, claims, func(token *jwt.Token) (any, error) {
		kid, ok := token.Header["kid"].(string)
		if !ok || kid == "" {
			return nil, errors.New("missing required header field, 'kid' indicating key id")
		}
		a, ok := auth.Authority(claims.Issuer)
		if !ok {
			return nil, fmt.Errorf("issuer not found: %q", claims.Issuer)
		}
		if len(claims.Audience) != 1 || claims.Audience[0] != a.GetAudience() {
			return nil, fmt.Errorf("audience mismatch for issuer %q: got %q", a.GetIssuer(), []string(claims.Audience))
		}
		pub, err := authorityKey(a, kid, now)
		if err != nil {
			return nil, err
		}
		authority, keyID = a, kid
		return pub, nil
	})
	if err != nil {
		return nil, fmt.Errorf("verifying certificate: %w", err)
	}
	// Checked after the signature, as the reference does, so that an
	// unauthenticated caller learns nothing about app/authority pairs.
	if !slices.Contains(authority.GetAppIds(), req.HealthAuthorityID) {
		return nil, fmt.Errorf("app %q has not authorized health authority issuer %q", req.HealthAuthorityID, authority.GetIssuer())
	}
	if !validReportType(claims.ReportType) {
		return nil, fmt.Errorf("invalid report type: %q", claims.ReportType)
	}
	if err := checkTEKMAC(claims.TEKMAC, req); err != nil {
		return nil, err
	}
	return &verifiedCertificate{authority: authority, kid: keyID, reportType: claims.ReportType, onset: claims.SymptomOnsetInterval}, nil
}

// authorityKey returns the public key of the authority with the given kid
// whose validity window [from, through) contains now (through 0: no end).
func authorityKey(a *fsmpb.Authority, kid string, now time.Time) (*ecdsa.PublicKey, error) {
	t := now.Unix()
	for _, k := range a.GetKeys() {
		if k.GetKid() != kid || t < k.GetValidFromUnix() || (k.GetValidThroughUnix() != 0 && t >= k.GetValidThroughUnix()) {
			continue
		}
		parsed, err := x509.ParsePKIXPublicKey(k.GetPublicKeyDer())
		if err != nil {
			return nil, fmt.Errorf("issuer %q key %q: %w", a.GetIssuer(), kid, err)
		}
		pub, ok := parsed.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("issuer %q key %q is not an ECDSA P-256 key", a.GetIssuer(), kid)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("no active public key %q for health authority %q", kid, a.GetIssuer())
}

// checkTEKMAC checks that the certificate's tekmac covers exactly the
// request's keys, with the request's hmacKey as the HMAC secret.
func checkTEKMAC(tekmac string, req *Request) error {
	got, err := DecodeBase64(tekmac)
	if err != nil {
		return fmt.Errorf("error decoding HMAC from claims: %w", err)
	}
	secret, err := DecodeBase64(req.HMACKey)
	if err != nil {
		return fmt.Errorf("error decoding HMAC secret from publish request: %w", err)
	}
	want, err := allowedTEKMACs(secret, req.Keys)
	if err != nil {
		return fmt.Errorf("calculating expected HMAC: %w", err)
	}
	for _, w := range want {
		if hmac.Equal(w, got) {
			return nil
		}
	}
	return errors.New("HMAC mismatch, publish request does not match diagnosis verification certificate")
}
