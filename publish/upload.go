package publish

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"time"
)

// Signer is a health authority's certificate signer: what an app's
// verification server does before the app uploads. Development uploads
// (covid-node dev-upload) and load tests use it.
type Signer struct {
	Key              *ecdsa.PrivateKey
	Issuer, Audience string
	Kid              string
	AppID            string
}

// MaxRandomKeys is how many daily keys fit the 14-day window.
const MaxRandomKeys = 14

// RandomUpload builds a signed publish request for n random keys, one per
// day for the n days before now (so none is still valid and all are within
// 14 days of the onset it certifies), as an app does after a confirmed test.
func (s Signer) RandomUpload(n int, now time.Time) (*Request, error) {
	req, _, err := RandomKeys(s.AppID, n, now)
	if err != nil {
		return nil, err
	}
	if err := s.Certify(req, ReportTypeConfirmed, now); err != nil {
		return nil, fmt.Errorf("random upload: %w", err)
	}
	return req, nil
}

// Certify gives req a fresh hmacKey and a certificate of reportType for
// its keys, as a verification server does when an app asks again (for a
// revision from likely to confirmed, say).
func (s Signer) Certify(req *Request, reportType string, now time.Time) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	mac, err := TEKMAC(secret, req.Keys)
	if err != nil {
		return err
	}
	today := intervalNumber(now) / 144 * 144
	req.HMACKey = base64.StdEncoding.EncodeToString(secret)
	req.VerificationPayload, err = SignCertificate(s.Key, Claims{
		Issuer: s.Issuer, Audience: s.Audience, Kid: s.Kid, ReportType: reportType,
		SymptomOnsetInterval: today - 4*144, TEKMAC: mac, IssuedAt: now,
	})
	return err
}

// RandomKeys builds a publish request of app appID for n random daily keys
// of the n days before now, with a fresh hmacKey and no certificate yet;
// it returns the tekmac (ekeyhmac) the certificate must carry, as an app
// computes it before asking its verification server.
func RandomKeys(appID string, n int, now time.Time) (*Request, string, error) {
	if n < 1 || n > MaxRandomKeys {
		return nil, "", fmt.Errorf("random upload: %d keys, want 1..%d", n, MaxRandomKeys)
	}
	today := intervalNumber(now) / 144 * 144
	req := &Request{HealthAuthorityID: appID, Padding: Padding()}
	for i := 1; i <= n; i++ {
		k := make([]byte, 16)
		if _, err := rand.Read(k); err != nil {
			return nil, "", err
		}
		risk, err := rand.Int(rand.Reader, big.NewInt(8))
		if err != nil {
			return nil, "", err
		}
		req.Keys = append(req.Keys, ExposureKey{
			Key: base64.StdEncoding.EncodeToString(k), IntervalNumber: today - int32(i)*144,
			IntervalCount: 144, TransmissionRisk: int(risk.Int64()) + 1,
		})
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, "", err
	}
	req.HMACKey = base64.StdEncoding.EncodeToString(secret)
	mac, err := TEKMAC(secret, req.Keys)
	if err != nil {
		return nil, "", fmt.Errorf("random upload: %w", err)
	}
	return req, mac, nil
}
