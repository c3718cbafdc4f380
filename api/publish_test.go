package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

const goldenDir = "../testdata/gaen/"

// registerGoldenAuthority registers the signer of the golden upload.
func registerGoldenAuthority(t *testing.T, ts *testServer) {
	t.Helper()
	pem, err := os.ReadFile(goldenDir + "publish-certificate-signer.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	w := ts.admin(http.MethodPost, "/v1/admin/authorities", Authority{
		Issuer: "iss-test", Audience: "aud-test", AppIDs: []string{"com.example.ios.app"},
		Keys: []AuthorityKey{{Kid: "1", PublicKeyPEM: string(pem)}},
	})
	if w.Code != http.StatusOK {
		t.Fatalf("register authority: %d %s", w.Code, w.Body)
	}
}

func goldenBody(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(goldenDir + "publish-with-certificate.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var jsonCT = map[string]string{"Content-Type": "application/json"}

// The golden upload of the reference client is accepted inside its
// certificate's window and refused outside it, changing nothing.
func TestPublishGoldenUpload(t *testing.T) {
	cases := []struct {
		name       string
		now        int64
		wantStatus int
		wantCode   string
		wantKeys   int
	}{
		{"inside window", 1795867700, http.StatusOK, "", 14},
		{"before nbf", 1795867679 - 600, http.StatusUnauthorized, publish.CodeVerificationCertificateInvalid, 0},
		{"after exp", 1795867980 + 600, http.StatusUnauthorized, publish.CodeVerificationCertificateInvalid, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, func() time.Time { return time.Unix(tc.now, 0) })
			registerGoldenAuthority(t, ts)
			w := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT)
			resp := decode[publish.Response](t, w)
			if w.Code != tc.wantStatus || resp.Code != tc.wantCode || resp.InsertedExposures != tc.wantKeys {
				t.Fatalf("got %d %+v, want %d code %q inserted %d", w.Code, resp, tc.wantStatus, tc.wantCode, tc.wantKeys)
			}
			if got := ts.node.FSM().NumKeys(); got != tc.wantKeys {
				t.Fatalf("state holds %d keys, want %d", got, tc.wantKeys)
			}
			if w.Header().Get("X-Api-Version") != "v1" || len(resp.Padding) < 1024 {
				t.Fatalf("missing x-api-version or padding: %v %d", w.Header(), len(resp.Padding))
			}
		})
	}
}

// Bad requests get the GAEN status and code and change nothing.
func TestPublishBadInput(t *testing.T) {
	ts := newTestServer(t, func() time.Time { return time.Unix(1795867700, 0) })
	registerGoldenAuthority(t, ts)
	golden := goldenBody(t)
	var req map[string]any
	if err := json.Unmarshal(golden, &req); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for kk, vv := range req {
			m[kk] = vv
		}
		m[k] = v
		b, _ := json.Marshal(m)
		return b
	}
	keys := req["temporaryExposureKeys"].([]any)
	var many []any
	for len(many) <= 30 {
		many = append(many, keys...)
	}
	cases := []struct {
		name       string
		body       []byte
		header     map[string]string
		wantStatus int
		wantCode   string
	}{
		{"wrong content type", golden, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, publish.CodeBadRequest},
		{"malformed json", []byte(`{"temporaryExposureKeys": [`), jsonCT, http.StatusBadRequest, publish.CodeBadRequest},
		{"unknown field", with("surprise", 1), jsonCT, http.StatusBadRequest, publish.CodeBadRequest},
		{"trailing data", append(append([]byte{}, golden...), []byte(` {}`)...), jsonCT, http.StatusBadRequest, publish.CodeBadRequest},
		{"body over 64000 bytes", with("padding", strings.Repeat("A", 64001)), jsonCT, http.StatusRequestEntityTooLarge, publish.CodeBadRequest},
		{"unknown app", with("healthAuthorityID", "com.other.app"), jsonCT, http.StatusUnauthorized, publish.CodeUnknownHealthAuthorityID},
		{"no certificate", with("verificationPayload", ""), jsonCT, http.StatusUnauthorized, publish.CodeVerificationCertificateInvalid},
		{"wrong hmac key", with("hmacKey", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), jsonCT, http.StatusUnauthorized, publish.CodeVerificationCertificateInvalid},
		{"more than 30 keys", with("temporaryExposureKeys", many), jsonCT, http.StatusUnauthorized, publish.CodeVerificationCertificateInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := ts.do(http.MethodPost, "/v1/publish", tc.body, tc.header)
			resp := decode[publish.Response](t, w)
			if w.Code != tc.wantStatus || resp.Code != tc.wantCode || resp.ErrorMessage == "" {
				t.Fatalf("got %d %q %q, want %d %q", w.Code, resp.Code, resp.ErrorMessage, tc.wantStatus, tc.wantCode)
			}
			if n := ts.node.FSM().NumKeys(); n != 0 {
				t.Fatalf("refused request stored %d keys", n)
			}
		})
	}
}

// A chaff request looks like a success and stores nothing; the same upload
// sent again (a retry after a lost answer) is answered as the first was.
func TestPublishChaffAndRepeat(t *testing.T) {
	ts := newTestServer(t, func() time.Time { return time.Unix(1795867700, 0) })
	registerGoldenAuthority(t, ts)
	const realLatency = 300 * time.Millisecond
	ts.srv.recent.Record(realLatency)
	start := time.Now()
	w := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), map[string]string{"Content-Type": "application/json", "X-Chaff": "1"})
	took := time.Since(start)
	resp := decode[publish.Response](t, w)
	if w.Code != http.StatusOK || resp.InsertedExposures != 14 || len(resp.Padding) < 1024 || ts.node.FSM().NumKeys() != 0 {
		t.Fatalf("chaff: %d %+v, %d keys stored", w.Code, resp.InsertedExposures, ts.node.FSM().NumKeys())
	}
	if took < realLatency {
		t.Fatalf("chaff answered after %v, sooner than the real upload it imitates (%v)", took, realLatency)
	}
	if w := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("first publish: %d %s", w.Code, w.Body)
	}
	w = ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT)
	resp = decode[publish.Response](t, w)
	if w.Code != http.StatusOK || resp.Code != "" || resp.InsertedExposures != 14 || resp.RevisionToken == "" {
		t.Fatalf("repeat: %d %+v", w.Code, resp)
	}
	if n := ts.node.FSM().NumKeys(); n != 14 {
		t.Fatalf("state holds %d keys, want 14", n)
	}
	keys := ts.admin(http.MethodGet, "/v1/admin/keys", nil)
	if keys.Header().Get("X-Applied-Index") == "" || !bytes.Contains(keys.Body.Bytes(), []byte("+9VSOGaePu9IgQMewmcJeQ==")) {
		t.Fatalf("keys read: %v %s", keys.Header(), keys.Body.String())
	}
}
