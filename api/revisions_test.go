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
	"slices"
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
		{"the revision again", "confirmed", first.RevisionToken, http.StatusOK, ""},
		{"revised key to negative", "negative", first.RevisionToken, http.StatusBadRequest, publish.CodeKeyAlreadyRevised},
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

// An app shares again after a new day: its stored keys, sent again with
// its revision token and the same report type, are left as they are and
// the new key is stored; the answer's token covers the keys of both
// uploads, so the next revision needs no older token.
func TestResendWithNewKey(t *testing.T) {
	ts, key, now := revisionServer(t)
	keys := dayKeys(now, 3)
	w := ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "likely", "", keys), jsonCT)
	first := decode[publish.Response](t, w)
	if w.Code != http.StatusOK || first.InsertedExposures != 3 {
		t.Fatalf("first upload: %d %+v", w.Code, first)
	}
	next := append(slices.Clone(keys), dayKeys(now.Add(24*time.Hour), 1)...)
	var last publish.Response
	cases := []struct {
		name       string
		token      func() string
		wantStatus int
		wantCode   string
		inserted   int
	}{
		{"without token", func() string { return "" }, http.StatusBadRequest, publish.CodeMissingRevisionToken, 0},
		{"with token", func() string { return first.RevisionToken }, http.StatusOK, "", 1},
		{"the old token, new key now stored", func() string { return first.RevisionToken }, http.StatusBadRequest, publish.CodeInvalidRevisionToken, 0},
		{"again with the new token", func() string { return last.RevisionToken }, http.StatusOK, "", 0},
	}
	for _, tc := range cases {
		w := ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "likely", tc.token(), next), jsonCT)
		resp := decode[publish.Response](t, w)
		if w.Code != tc.wantStatus || resp.Code != tc.wantCode || resp.InsertedExposures != tc.inserted {
			t.Fatalf("%s: %d %+v", tc.name, w.Code, resp)
		}
		if resp.RevisionToken != "" {
			last = resp
		}
	}
	if n := ts.node.FSM().NumKeys(); n != 4 {
		t.Fatalf("%d keys stored, want 4", n)
	}
	for _, k := range ts.node.FSM().Keys(nil) {
		if k.ReportType != 2 || k.Revised {
			t.Fatalf("a resent key changed: %+v", k)
		}
	}
	// The last token covers all four keys: they are revised in one upload.
	w = ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "confirmed", last.RevisionToken, next), jsonCT)
	if resp := decode[publish.Response](t, w); w.Code != http.StatusOK {
		t.Fatalf("revision with the merged token: %d %+v", w.Code, resp)
	}
	for _, k := range ts.node.FSM().Keys(nil) {
		if k.ReportType != 1 || !k.Revised {
			t.Fatalf("key after revision: %+v", k)
		}
	}
}

// An exact retry of an upload (the same body) is answered as the first
// was, also when its keys were revised in between; a different
// certificate for the same keys is a resend that needs the token.
func TestExactRetry(t *testing.T) {
	ts, key, now := revisionServer(t)
	keys := dayKeys(now, 2)
	body := signedBody(t, key, now, "likely", "", keys)
	w := ts.do(http.MethodPost, "/v1/publish", body, jsonCT)
	first := decode[publish.Response](t, w)
	if w.Code != http.StatusOK || first.InsertedExposures != 2 {
		t.Fatalf("first upload: %d %+v", w.Code, first)
	}
	if w := ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "confirmed", first.RevisionToken, keys), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("revision: %d %s", w.Code, w.Body)
	}
	w = ts.do(http.MethodPost, "/v1/publish", body, jsonCT)
	if retry := decode[publish.Response](t, w); w.Code != http.StatusOK || retry.InsertedExposures != 2 || retry.RevisionToken == "" {
		t.Fatalf("exact retry: %d %+v", w.Code, retry)
	}
	w = ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "likely", "", keys), jsonCT)
	if resp := decode[publish.Response](t, w); w.Code != http.StatusBadRequest || resp.Code != publish.CodeMissingRevisionToken {
		t.Fatalf("other certificate, same keys: %d %+v", w.Code, resp)
	}
	for _, k := range ts.node.FSM().Keys(nil) {
		if k.ReportType != 1 {
			t.Fatalf("a retry changed key %+v", k)
		}
	}
}
