package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// decoyKeys sign the tokens and certificates of decoy answers (X-Chaff):
// keys drawn when the node starts and kept nowhere, under the kids of the
// region's real keys, so that a decoy answer has the fields, shape and
// size of a real one (an ES256 signature is always 64 bytes) and is valid
// nowhere. A decoy signed with a real key would be a certificate for
// anyone holding the device key.
type decoyKeys struct {
	token, cert verify.SigningKey
}

func newDecoyKeys(v *Verification) *decoyKeys {
	if v == nil || len(v.TokenKeys) == 0 || len(v.CertKeys) == 0 {
		return nil
	}
	draw := func(kid string) verify.SigningKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err) // crypto/rand never fails
		}
		return verify.SigningKey{Kid: kid, Private: k}
	}
	return &decoyKeys{token: draw(v.TokenKeys[0].Kid), cert: draw(v.CertKeys[0].Kid)}
}

// decoyAnswer is the 200 a decoy request of a verification route gets: the
// route's real answer with made-up values (a code status as of an unused
// code), and padding.
func (s *Server) decoyAnswer(c *gin.Context, body []byte) any {
	now := s.cfg.Now()
	v, keys := s.cfg.Verification, s.decoys
	onset := verify.FormatDay(int32(now.Unix()/86400) - 3)
	switch c.FullPath() {
	case "/api/verify":
		resp := verify.VerifyResponse{TestType: verify.TestConfirmed, SymptomDate: onset, Padding: publish.Padding()}
		if keys != nil {
			resp.Token, _ = verify.SignToken(keys.token, v.Issuer, verify.TokenClaims{ID: verify.NewTokenID(),
				TestType: resp.TestType, SymptomDate: resp.SymptomDate}, now)
		}
		return resp
	case "/api/certificate":
		resp := verify.CertificateResponse{Padding: publish.Padding()}
		if keys != nil {
			resp.Certificate, _ = verify.SignCertificate(keys.cert, verify.CertificateClaims{Issuer: v.Issuer, Audience: v.Audience,
				TestType: verify.TestConfirmed, EKeyHMAC: decoyHMAC(body), SymptomDay: int32(now.Unix()/86400) - 3}, now)
		}
		return resp
	case "/api/user-report":
		exp := now.Add(s.issuer.LongTTL()).Unix()
		return gin.H{"expiresAt": verify.FormatExpiry(exp), "expiresAtTimestamp": exp, "padding": publish.Padding()}
	case "/api/issue":
		var req verify.IssueRequest
		json.Unmarshal(body, &req) // a decoy's body may be anything: drawn values then
		resp := s.issuer.Decoy(req)
		resp.Padding = publish.Padding()
		return resp
	case "/api/batch-issue":
		var req verify.BatchIssueRequest
		json.Unmarshal(body, &req)
		out := verify.BatchIssueResponse{Padding: publish.Padding()}
		for _, item := range req.Codes[:min(len(req.Codes), verify.MaxBatchIssue)] {
			out.Codes = append(out.Codes, s.issuer.Decoy(item))
		}
		if len(out.Codes) == 0 {
			out.Codes = append(out.Codes, s.issuer.Decoy(verify.IssueRequest{}))
		}
		return out
	case "/api/checkcodestatus", "/api/expirecode":
		d := s.issuer.Decoy(verify.IssueRequest{})
		return verify.CodeStatusResponse{ExpiresAtTimestamp: d.ExpiresAtTimestamp, LongExpiresAtTimestamp: d.LongExpiresAtTimestamp,
			Padding: publish.Padding()}
	}
	return gin.H{"padding": publish.Padding()}
}

// decoyHMAC is the ekeyhmac a decoy certificate carries: the request's, if
// it is one, or 32 random bytes.
func decoyHMAC(body []byte) string {
	var req verify.CertificateRequest
	if json.Unmarshal(body, &req) == nil && verify.CheckEKeyHMAC(req.EKeyHMAC) == nil {
		return req.EKeyHMAC
	}
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
