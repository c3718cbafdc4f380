package publish

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// fakeAuthorities is an in-memory Authorities.
type fakeAuthorities map[string]*fsmpb.Authority

func (f fakeAuthorities) Authority(issuer string) (*fsmpb.Authority, bool) {
	a, ok := f[issuer]
	return a, ok
}

func (f fakeAuthorities) AppKnown(appID string) bool {
	for _, a := range f {
		if slices.Contains(a.GetAppIds(), appID) {
			return true
		}
	}
	return false
}

const (
	testIssuer   = "iss-test"
	testAudience = "aud-test"
	testKid      = "1"
	testApp      = "com.example.ios.app"
)

// testNow is the clock of the tests that do not use the golden upload.
func testNow() time.Time { return time.Date(2026, 3, 10, 13, 37, 0, 0, time.UTC) }

func newSigner(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func testAuthority(der []byte) *fsmpb.Authority {
	return &fsmpb.Authority{
		Issuer:   testIssuer,
		Audience: testAudience,
		AppIds:   []string{testApp},
		Keys:     []*fsmpb.AuthorityKey{{Kid: testKid, PublicKeyDer: der}},
	}
}

// randomKey returns the standard base64 of 16 random bytes.
func randomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// uploader builds signed uploads for a fixed signer and clock.
type uploader struct {
	t      testing.TB
	signer *ecdsa.PrivateKey
	auth   fakeAuthorities
	now    time.Time
}

func newUploader(t testing.TB) *uploader {
	signer, der := newSigner(t)
	return &uploader{t: t, signer: signer, auth: fakeAuthorities{testIssuer: testAuthority(der)}, now: testNow()}
}

// request returns a request for keys with a certificate of the report type
// (and certificate onset, 0 for none) issued a minute before u.now.
func (u *uploader) request(keys []ExposureKey, reportType string, certOnset int32) *Request {
	u.t.Helper()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		u.t.Fatal(err)
	}
	mac, err := TEKMAC(secret, keys)
	if err != nil {
		u.t.Fatal(err)
	}
	jwt, err := SignCertificate(u.signer, Claims{
		Issuer: testIssuer, Audience: testAudience, Kid: testKid, ReportType: reportType,
		SymptomOnsetInterval: certOnset, TEKMAC: mac, IssuedAt: u.now.Add(-time.Minute),
	})
	if err != nil {
		u.t.Fatal(err)
	}
	return &Request{
		Keys: keys, HealthAuthorityID: testApp, VerificationPayload: jwt,
		HMACKey: base64.StdEncoding.EncodeToString(secret),
	}
}

// key returns a valid key starting daysAgo UTC days before u.now's day.
func (u *uploader) key(daysAgo int32, risk int) ExposureKey {
	u.t.Helper()
	start := (intervalNumber(u.now)/144 - daysAgo) * 144
	return ExposureKey{Key: randomKey(u.t), IntervalNumber: start, IntervalCount: 144, TransmissionRisk: risk}
}

// wantError asserts that err is an *Error with the status and code.
func wantError(t *testing.T, err error, status int, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *Error %d %s", err, status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("error = %d %s (%s), want %d %s", e.Status, e.Code, e.Message, status, code)
	}
	return e
}
