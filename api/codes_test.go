package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// codeUpload is the golden upload's keys with a one-time code instead of a
// certificate.
func codeUpload(t *testing.T, code string) []byte {
	t.Helper()
	return codeUploadOf(t, code, 14)
}

// codeUploadOf is codeUpload with the first n of the golden keys.
func codeUploadOf(t *testing.T, code string, n int) []byte {
	t.Helper()
	var req map[string]any
	if err := json.Unmarshal(goldenBody(t), &req); err != nil {
		t.Fatal(err)
	}
	req["verificationPayload"] = code
	req["temporaryExposureKeys"] = req["temporaryExposureKeys"].([]any)[:n]
	b, _ := json.Marshal(req)
	return b
}

func newProvider(t *testing.T, ts *testServer, id string) string {
	t.Helper()
	w := ts.admin(http.MethodPost, "/v1/admin/providers", ProviderRequest{ID: id, Name: "Clinic"})
	if w.Code != http.StatusOK {
		t.Fatalf("add provider: %d %s", w.Code, w.Body)
	}
	return decode[struct{ Token string }](t, w).Token
}

func getCode(t *testing.T, ts *testServer, token string) string {
	t.Helper()
	w := ts.do(http.MethodPost, "/v1/codes", []byte(`{"report_type":"confirmed"}`), map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
	if w.Code != http.StatusOK {
		t.Fatalf("issue code: %d %s", w.Code, w.Body)
	}
	return decode[CodeResponse](t, w).Code
}

// A provider's code admits one upload; reuse, a wrong code and a revoked
// provider are refused with clear errors and change no keys.
func TestOneTimeCodes(t *testing.T) {
	ts := newTestServer(t, func() time.Time { return time.Unix(1795867700, 0) })
	token := newProvider(t, ts, "clinic-1")
	code := getCode(t, ts, token)
	if c, err := publish.ParseCode(code); err != nil || c.Display() != code {
		t.Fatalf("code %q is not in groups: %v", code, err)
	}
	w := ts.do(http.MethodPost, "/v1/publish", codeUpload(t, code), jsonCT)
	if resp := decode[publish.Response](t, w); w.Code != http.StatusOK || resp.InsertedExposures != 14 {
		t.Fatalf("upload with code: %d %+v", w.Code, resp)
	}
	subs := decode[struct{ Submissions []SubmissionView }](t, ts.admin(http.MethodGet, "/v1/admin/submissions", nil))
	if len(subs.Submissions) != 1 || subs.Submissions[0].Issuer != "" {
		t.Fatalf("submissions %+v", subs)
	}
	// The same upload again (its answer was lost) is answered as the first.
	w = ts.do(http.MethodPost, "/v1/publish", codeUpload(t, code), jsonCT)
	if resp := decode[publish.Response](t, w); w.Code != http.StatusOK || resp.InsertedExposures != 14 || resp.RevisionToken == "" {
		t.Fatalf("exact retry of the code upload: %d %+v", w.Code, resp)
	}
	fresh := getCode(t, ts, token)
	wrong := []byte(fresh)
	wrong[len(wrong)-1] = map[bool]byte{true: '1', false: '0'}[wrong[len(wrong)-1] == '0'] // same lookup, wrong secret
	for _, tc := range []struct {
		name, code string
		keys       int
	}{
		{"reused for another upload", code, 13},
		{"wrong secret", string(wrong), 14},
		{"unknown", "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ", 14},
	} {
		// Every refusal reads alike and takes as long: a stranger learns
		// nothing of a code's state from the answer.
		start := time.Now()
		w := ts.do(http.MethodPost, "/v1/publish", codeUploadOf(t, tc.code, tc.keys), jsonCT)
		resp := decode[publish.Response](t, w)
		if w.Code != http.StatusUnauthorized || resp.Code != publish.CodeVerificationCertificateInvalid || resp.ErrorMessage != "one-time code refused" {
			t.Fatalf("%s code: %d %+v", tc.name, w.Code, resp)
		}
		if took := time.Since(start); took < codeWait {
			t.Fatalf("%s code answered after %v, before the %v every refusal takes", tc.name, took, codeWait)
		}
	}
	if n := ts.node.FSM().NumKeys(); n != 14 {
		t.Fatalf("%d keys stored, want 14", n)
	}
	// The wrong secret counted against the client, not the code: its
	// holder still uploads with it.
	if c, _ := publish.ParseCode(fresh); true {
		if stored, _ := ts.node.FSM().Code(c.Lookup); stored.GetFailures() != 0 {
			t.Fatalf("a wrong secret counted %d failures on the code", stored.GetFailures())
		}
	}
	// (The golden keys are stored already: the answer is about them, which
	// shows the code itself was admitted.)
	w = ts.do(http.MethodPost, "/v1/publish", codeUploadOf(t, fresh, 12), jsonCT)
	if resp := decode[publish.Response](t, w); resp.Code != publish.CodeMissingRevisionToken {
		t.Fatalf("the holder of the code after a stranger's wrong guess: %d %+v", w.Code, resp)
	}
	if w := ts.admin(http.MethodDelete, "/v1/admin/providers/clinic-1", nil); w.Code != http.StatusOK {
		t.Fatalf("revoke provider: %d %s", w.Code, w.Body)
	}
	w = ts.do(http.MethodPost, "/v1/codes", nil, map[string]string{"Authorization": "Bearer " + token})
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("revoked provider got a code: %d", w.Code)
	}
	w = ts.admin(http.MethodPost, "/v1/admin/revocations", RevokeRequest{Reason: "compromised clinic", Provider: "clinic-1"})
	if w.Code != http.StatusOK || decode[map[string]int](t, w)["revoked"] != 14 {
		t.Fatalf("revoke by provider: %d %s", w.Code, w.Body)
	}
}

// Too many wrong codes from one client get 429 before any raft work.
func TestCodeFailuresPerClient(t *testing.T) {
	ts := newTestServer(t, func() time.Time { return time.Unix(1795867700, 0) })
	// The test server's limits are off; give this one a small budget.
	ts.srv.codeFailures = newIPLimiter(1.0/3600, 2, ts.srv.cfg.Now)
	for i := range 2 {
		if w := ts.do(http.MethodPost, "/v1/publish", codeUpload(t, "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"), jsonCT); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	w := ts.do(http.MethodPost, "/v1/publish", codeUpload(t, "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"), jsonCT)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after the budget: %d %v", w.Code, w.Header())
	}
}

// Provider endpoints need a provider token; bad requests are 400.
func TestIssueCodeInput(t *testing.T) {
	ts := newTestServer(t, time.Now)
	token := newProvider(t, ts, "p")
	for _, tc := range []struct {
		name, auth, body string
		want             int
	}{
		{"no token", "", `{}`, http.StatusUnauthorized},
		{"admin token is not a provider token", "Bearer " + testToken, `{}`, http.StatusUnauthorized},
		{"bad report type", "Bearer " + token, `{"report_type":"maybe"}`, http.StatusBadRequest},
		{"bad onset", "Bearer " + token, `{"symptom_onset":"yesterday"}`, http.StatusBadRequest},
		{"unknown field", "Bearer " + token, `{"colour":"red"}`, http.StatusBadRequest},
	} {
		w := ts.do(http.MethodPost, "/v1/codes", []byte(tc.body), map[string]string{"Authorization": tc.auth, "Content-Type": "application/json"})
		if w.Code != tc.want {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
}
