package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
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
	if len(code) != 19 || strings.Count(code, "-") != 3 || verify.GroupCode(verify.Normalize(code)) != code {
		t.Fatalf("code %q is not a long code in groups of four", code)
	}
	w := ts.do(http.MethodPost, "/v1/publish", codeUpload(t, code), jsonCT)
	if resp := decode[publish.Response](t, w); w.Code != http.StatusOK || resp.InsertedExposures != 14 {
		t.Fatalf("upload with code: %d %+v", w.Code, resp)
	}
	subs := decode[struct{ Submissions []SubmissionView }](t, ts.admin(http.MethodGet, "/v1/admin/submissions", nil))
	if len(subs.Submissions) != 1 || subs.Submissions[0].Issuer != "" || subs.Submissions[0].Provider != "clinic-1" {
		t.Fatalf("submissions %+v", subs)
	}
	// The same upload again (its answer was lost) is answered as the first.
	w = ts.do(http.MethodPost, "/v1/publish", codeUpload(t, code), jsonCT)
	if resp := decode[publish.Response](t, w); w.Code != http.StatusOK || resp.InsertedExposures != 14 || resp.RevisionToken == "" {
		t.Fatalf("exact retry of the code upload: %d %+v", w.Code, resp)
	}
	fresh := getCode(t, ts, token)
	wrong := []byte(fresh)
	wrong[len(wrong)-1] = map[bool]byte{true: 'a', false: 'b'}[wrong[len(wrong)-1] != 'a']
	for _, tc := range []struct {
		name, code string
		keys       int
	}{
		{"reused for another upload", code, 13},
		{"wrong", string(wrong), 14},
		{"unknown", "zzzz-zzzz-zzzz-zzzz", 14},
		{"unknown short", "12345678", 14},
		{"unknown of the previous release", "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ", 14},
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
	// A wrong guess counted against the client, not the code: its holder
	// still uploads with it. (The golden keys are stored already: the
	// answer is about them, which shows the code itself was admitted.)
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

// One one-time-code system: a code from /v1/codes is a verification code
// (its uuid answers /api/checkcodestatus, and /api/verify takes it), and a
// code from the issuing API uploads directly to /v1/publish, short or long,
// as typed; either way it is used once, and a roll-back can name it.
func TestOneCodeSystem(t *testing.T) {
	ts := verifyServer(t)
	token := newProvider(t, ts, "ward")
	w := ts.do(http.MethodPost, "/v1/codes", []byte(`{"report_type":"likely"}`), map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
	if w.Code != http.StatusOK {
		t.Fatalf("issue: %d %s", w.Code, w.Body)
	}
	viaCodes := decode[CodeResponse](t, w)
	if stored, ok := ts.node.FSM().VerificationCode(viaCodes.UUID); !ok || stored.GetProvider() != "ward" || stored.GetTestType() != "likely" ||
		stored.GetLongExpiresUnix() != viaCodes.ExpiresAt.Unix() {
		t.Fatalf("/v1/codes made %+v, stored %v", viaCodes, stored)
	}
	ans := apiAnswer(t, ts.api("/api/verify", deviceKey, map[string]any{"code": viaCodes.Code}))
	if ans["testtype"] != "likely" || ans["token"] == "" {
		t.Fatalf("/api/verify of a /v1/codes code: %v", ans)
	}

	today := time.Now().UTC().Format(time.DateOnly)
	for _, typed := range []func(verify.IssueResponse) string{
		func(r verify.IssueResponse) string { return r.Code },
		func(r verify.IssueResponse) string { return strings.ToUpper(r.Code[:4] + " " + r.Code[4:]) },
	} {
		issued := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed", SymptomDate: today})
		req, _, err := publish.RandomKeys("any.app", 14, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req.VerificationPayload = typed(issued)
		if w := ts.do(http.MethodPost, "/v1/publish", req, jsonCT); w.Code != http.StatusOK {
			t.Fatalf("publish with the issued code %q: %d %s", req.VerificationPayload, w.Code, w.Body)
		}
		status := apiAnswer(t, ts.api("/api/checkcodestatus", labKey, map[string]any{"uuid": issued.UUID}))
		if status["claimed"] != true {
			t.Fatalf("a code an upload used is not claimed: %v", status)
		}
		verified := apiAnswer(t, ts.api("/api/verify", deviceKey, map[string]any{"code": issued.Code}))
		if verified["errorCode"] != "code_invalid" {
			t.Fatalf("/api/verify of a code an upload used: %v", verified)
		}
		w := ts.admin(http.MethodPost, "/v1/admin/revocations", RevokeRequest{Reason: "wrong patient", Code: typed(issued)})
		if w.Code != http.StatusOK || decode[map[string]int](t, w)["revoked"] != 14 {
			t.Fatalf("roll back by the code %q: %d %s", typed(issued), w.Code, w.Body)
		}
	}
}

// Codes the previous release's /v1/codes issued (command version 4) are
// redeemed once after the upgrade, until they expire.
func TestLegacyCodeRedeemedOnce(t *testing.T) {
	ts, region := stateOnlyServer(t)
	ctx := context.Background()
	if err := command.PutProvider(ctx, region, &fsmpb.Provider{Id: "clinic", TokenHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	legacy, _ := verify.ParseLegacyCode("ABCD-EFGH-JKMN-PQRS-TVWX")
	hash := legacy.Hash(verify.CodeKeyFromToken(testToken))
	region.writes.Version = 4
	_, err := region.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE, IssueCode: &fsmpb.Code{
		Lookup: legacy.Lookup, Hash: hash[:], Provider: "clinic", TtlSeconds: 3600, ReportType: "confirmed"}})
	if err != nil {
		t.Fatal(err)
	}
	region.writes.Version = 0
	if w := ts.do(http.MethodPost, "/v1/publish", codeUpload(t, "abcd efgh jkmn pqrs tvwx"), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("upload with a code of the previous release: %d %s", w.Code, w.Body)
	}
	if stored, _ := region.FSM().Code(legacy.Lookup); stored.GetUsedUnix() == 0 {
		t.Fatal("the code was not used")
	}
	if w := ts.do(http.MethodPost, "/v1/publish", codeUploadOf(t, legacy.Display(), 13), jsonCT); w.Code != http.StatusUnauthorized {
		t.Fatalf("a second upload with the code: %d %s", w.Code, w.Body)
	}
	_, err = region.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE, IssueCode: &fsmpb.Code{
		Lookup: 1, Hash: hash[:], Provider: "clinic", TtlSeconds: 3600, ReportType: "confirmed"}})
	if err == nil {
		t.Fatal("a code of the previous release was issued at this build's command version")
	}
}

// A provider id that is registered is refused (a typo must not void a
// lab's token); asked to rotate, the provider gets a new token and the old
// one stops working.
func TestProviderTokenRotatesOnlyWhenAsked(t *testing.T) {
	ts := newTestServer(t, time.Now)
	old := newProvider(t, ts, "lab")
	w := ts.admin(http.MethodPost, "/v1/admin/providers", ProviderRequest{ID: "lab", Name: "Another lab"})
	if body := decode[errorBody](t, w); w.Code != http.StatusConflict || body.Code != "provider_exists" {
		t.Fatalf("an id that is registered: %d %+v", w.Code, body)
	}
	getCode(t, ts, old) // still works
	w = ts.admin(http.MethodPost, "/v1/admin/providers", ProviderRequest{ID: "lab", Name: "Lab", Rotate: true})
	rotated := decode[struct{ Token string }](t, w).Token
	if w.Code != http.StatusOK || rotated == "" || rotated == old {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	getCode(t, ts, rotated)
	if w := ts.do(http.MethodPost, "/v1/codes", nil, map[string]string{"Authorization": "Bearer " + old}); w.Code != http.StatusUnauthorized {
		t.Fatalf("the token before the rotation: %d", w.Code)
	}
}

// Too many wrong codes from one client get 429 before any raft work.
func TestCodeFailuresPerClient(t *testing.T) {
	ts := newTestServer(t, func() time.Time { return time.Unix(1795867700, 0) })
	// The test server's limits are off; give this one a small budget.
	ts.srv.codeFailures = newIPLimiter(1.0/3600, 2, ts.srv.cfg.Now)
	for i := range 2 {
		if w := ts.do(http.MethodPost, "/v1/publish", codeUpload(t, "zzzz-zzzz-zzzz-zzzz"), jsonCT); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	w := ts.do(http.MethodPost, "/v1/publish", codeUpload(t, "zzzz-zzzz-zzzz-zzzz"), jsonCT)
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
