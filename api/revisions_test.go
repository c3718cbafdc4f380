package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// revisionServer has a health authority whose certificates the test signs.
func revisionServer(t *testing.T) (*testServer, *ecdsa.PrivateKey, time.Time) {
	t.Helper()
	now := time.Unix(1795867700, 0)
	ts := newTestServer(t, func() time.Time { return now })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	w := ts.admin(http.MethodPost, "/v1/admin/authorities", Authority{Issuer: "ha", Audience: "aud", AppIDs: []string{"app"},
		Keys: []AuthorityKey{{Kid: "1", PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}}})
	if w.Code != http.StatusOK {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	return ts, key, now
}

// signedBody builds an upload of keys certified with the report type.
func signedBody(t *testing.T, key *ecdsa.PrivateKey, now time.Time, reportType, token string, keys []publish.ExposureKey) []byte {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	mac, err := publish.TEKMAC(secret, keys)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := publish.SignCertificate(key, publish.Claims{Issuer: "ha", Audience: "aud", Kid: "1", ReportType: reportType, TEKMAC: mac, IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(publish.Request{Keys: keys, HealthAuthorityID: "app", VerificationPayload: cert,
		HMACKey: base64.StdEncoding.EncodeToString(secret), RevisionToken: token})
	return b
}

func dayKeys(now time.Time, n int) []publish.ExposureKey {
	today := int32(now.Unix()/600) / 144 * 144
	var out []publish.ExposureKey
	for i := 1; i <= n; i++ {
		k := make([]byte, 16)
		rand.Read(k)
		out = append(out, publish.ExposureKey{Key: base64.StdEncoding.EncodeToString(k), IntervalNumber: today - int32(i)*144, IntervalCount: 144})
	}
	return out
}

// An app revises its likely upload to confirmed with the revision token
// it got, once; without the token, with a forged one, or twice it is
// refused with the GAEN codes.
func TestRevisionTokens(t *testing.T) {
	ts, key, now := revisionServer(t)
	keys := dayKeys(now, 3)
	w := ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "likely", "", keys), jsonCT)
	first := decode[publish.Response](t, w)
	if w.Code != http.StatusOK || first.InsertedExposures != 3 || first.RevisionToken == "" {
		t.Fatalf("first upload: %d %+v", w.Code, first)
	}
	forged, _ := publish.SealRevisionToken(publish.RevisionTokenKey("not the region's"), nil)
	cases := []struct {
		name, report, token string
		wantStatus          int
		wantCode            string
	}{
		{"no token", "confirmed", "", http.StatusBadRequest, publish.CodeMissingRevisionToken},
		{"forged token", "confirmed", forged, http.StatusBadRequest, publish.CodeInvalidRevisionToken},
		{"likely to user-report", "user-report", first.RevisionToken, http.StatusBadRequest, publish.CodeInvalidReportTypeTransition},
		{"likely to confirmed", "confirmed", first.RevisionToken, http.StatusOK, ""},
		{"twice", "confirmed", first.RevisionToken, http.StatusBadRequest, publish.CodeKeyAlreadyRevised},
	}
	for _, tc := range cases {
		w := ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, tc.report, tc.token, keys), jsonCT)
		resp := decode[publish.Response](t, w)
		if w.Code != tc.wantStatus || resp.Code != tc.wantCode || resp.InsertedExposures != 0 {
			t.Fatalf("%s: %d %+v", tc.name, w.Code, resp)
		}
	}
	for _, k := range ts.node.FSM().Keys(nil) {
		if k.ReportType != 1 || !k.Revised {
			t.Fatalf("key after revision: %+v", k)
		}
	}
	// A token covers only the keys it was issued for.
	other := dayKeys(now, 2)
	w = ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "likely", "", other), jsonCT)
	mixed := append(other[:1], keys[0])
	w = ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "confirmed", decode[publish.Response](t, w).RevisionToken, mixed), jsonCT)
	if resp := decode[publish.Response](t, w); w.Code != http.StatusBadRequest || resp.Code != publish.CodeInvalidRevisionToken {
		t.Fatalf("token of other keys: %d %+v", w.Code, resp)
	}
}

// A first negative upload stores nothing but returns a token.
func TestNegativeFirstUpload(t *testing.T) {
	ts, key, now := revisionServer(t)
	w := ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "negative", "", dayKeys(now, 2)), jsonCT)
	resp := decode[publish.Response](t, w)
	if w.Code != http.StatusOK || resp.InsertedExposures != 0 || resp.RevisionToken == "" || ts.node.FSM().NumKeys() != 0 {
		t.Fatalf("negative upload: %d %+v, %d keys", w.Code, resp, ts.node.FSM().NumKeys())
	}
}
