package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/internal/kstest"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/sms"
	"github.com/covid-backend/covid-backend/verify"
)

const (
	deviceKey    = "device-key-of-the-app-0123456789"
	labKey       = "admin-key-of-the-lab-0123456789"
	clinicKey    = "admin-key-of-the-clinic-01234567"
	verifyApp    = "org.example.app"
	verifyIssuer = "region-test-verification"
)

func signingKey(t *testing.T, kid string) verify.SigningKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return verify.SigningKey{Kid: kid, Private: k}
}

// verifyServer is a region running the verification service: a device
// key, two providers with an admin key each, and its certificate key
// registered as its own health authority.
func verifyServer(t *testing.T) *testServer {
	t.Helper()
	return verifyServerWith(t, nil)
}

// verifyServerWith runs the service with an SMS gateway (nil: none).
func verifyServerWith(t *testing.T, gateway sms.Sender) *testServer {
	t.Helper()
	v := &Verification{Issuer: verifyIssuer, Audience: verifyIssuer, Region: "test", SMS: gateway,
		TokenKeys: []verify.SigningKey{signingKey(t, "t1")}, CertKeys: []verify.SigningKey{signingKey(t, "c1")}}
	ts := newTestServerConfig(t, Config{Verification: v})
	ctx := context.Background()
	for _, p := range []string{"lab", "clinic"} {
		h := sha256.Sum256([]byte(p))
		if err := command.PutProvider(ctx, ts.node, &fsmpb.Provider{Id: p, TokenHash: h[:]}); err != nil {
			t.Fatal(err)
		}
	}
	for name, k := range map[string]*fsmpb.ApiKey{
		deviceKey: {Name: "app", Kind: fsm.APIKeyDevice},
		labKey:    {Name: "lab-system", Kind: fsm.APIKeyAdmin, Provider: "lab"},
		clinicKey: {Name: "clinic-system", Kind: fsm.APIKeyAdmin, Provider: "clinic"},
	} {
		h := sha256.Sum256([]byte(name))
		k.Hash = h[:]
		if err := command.PutAPIKey(ctx, ts.node, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := verify.EnsureAuthority(ctx, ts.node, ts.node.FSM(), v.Issuer, v.Audience, []string{verifyApp}, v.CertKeys); err != nil {
		t.Fatal(err)
	}
	return ts
}

func (ts *testServer) api(path, key string, body any) *httptest.ResponseRecorder {
	ts.t.Helper()
	return ts.do(http.MethodPost, path, body, map[string]string{"X-API-Key": key, "Content-Type": "application/json; charset=utf-8"})
}

// apiAnswer decodes an answer as a flat JSON object.
func apiAnswer(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer %d %q: %v", w.Code, w.Body, err)
	}
	return m
}

func issueCode(t *testing.T, ts *testServer, key string, req any) verify.IssueResponse {
	t.Helper()
	w := ts.api("/api/issue", key, req)
	if w.Code != http.StatusOK {
		t.Fatalf("issue: %d %s", w.Code, w.Body)
	}
	return decode[verify.IssueResponse](t, w)
}

// The flow of an unmodified app: a lab issues a code, the app trades it
// for a token, the token and the HMAC of its keys for a certificate, and
// publishes with it; this region's /v1/publish accepts the certificate
// with no health authority registered by hand.
func TestVerificationAppFlow(t *testing.T) {
	ts := verifyServer(t)
	today := time.Now().UTC().Format("2006-01-02")
	issued := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed", TestDate: today, SymptomDate: today, UUID: "lab-0001"})
	if len(issued.Code) != 8 || issued.UUID != "lab-0001" || issued.ExpiresAtTimestamp-time.Now().Unix() > 15*60 || issued.ExpiresAt == "" {
		t.Fatalf("issued %+v", issued)
	}

	w := ts.api("/api/verify", deviceKey, map[string]any{"code": issued.Code, "accept": []string{"confirmed", "likely", "negative"}, "padding": strings.Repeat("x", 3000)})
	ans := apiAnswer(t, w)
	if w.Code != http.StatusOK || ans["testtype"] != "confirmed" || ans["testDate"] != today || ans["symptomDate"] != today || ans["token"] == "" || ans["error"] != nil {
		t.Fatalf("verify: %d %v", w.Code, ans)
	}
	if n := len(ans["padding"].(string)); n < 1024*4/3 {
		t.Fatalf("padding of %d characters", n)
	}
	req, mac, err := publish.RandomKeys(verifyApp, 14, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w = ts.api("/api/certificate", deviceKey, map[string]any{"token": ans["token"], "ekeyhmac": mac})
	cert := apiAnswer(t, w)
	if w.Code != http.StatusOK || cert["certificate"] == "" {
		t.Fatalf("certificate: %d %v", w.Code, cert)
	}
	req.VerificationPayload = cert["certificate"].(string)
	if w := ts.do(http.MethodPost, "/v1/publish", req, jsonCT); w.Code != http.StatusOK {
		t.Fatalf("publish with the region's own certificate: %d %s", w.Code, w.Body)
	}
	if n := ts.node.FSM().NumKeys(); n != 14 {
		t.Fatalf("%d keys stored, want 14", n)
	}
	// The token is single use.
	w = ts.api("/api/certificate", deviceKey, map[string]any{"token": ans["token"], "ekeyhmac": mac})
	if got := apiAnswer(t, w); w.Code != http.StatusBadRequest || got["errorCode"] != "token_expired" || got["error_code"] != "token_expired" {
		t.Fatalf("token used twice: %d %v", w.Code, got)
	}
	st := ts.api("/api/checkcodestatus", labKey, map[string]any{"uuid": "lab-0001"})
	if got := apiAnswer(t, st); st.Code != http.StatusOK || got["claimed"] != true {
		t.Fatalf("status of a used code: %d %v", st.Code, got)
	}
}

// Every refusal of /api/verify and /api/certificate, as the reference
// answers it; none changes anything it should not.
func TestVerificationRefusals(t *testing.T) {
	ts := verifyServer(t)
	likely := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "likely"})
	for _, tc := range []struct {
		name   string
		path   string
		key    string
		body   any
		status int
		code   string
	}{
		{"no key", "/api/verify", "", map[string]any{"code": likely.Code}, 401, "unauthorized"},
		{"admin key on the device API", "/api/verify", labKey, map[string]any{"code": likely.Code}, 401, "unauthorized"},
		{"device key on the issuing API", "/api/issue", deviceKey, map[string]any{"testType": "confirmed"}, 401, "unauthorized"},
		{"not JSON", "/api/verify", deviceKey, []byte("{code"), 400, "unparsable_request"},
		{"bad accept", "/api/verify", deviceKey, map[string]any{"code": likely.Code, "accept": []string{"positive"}}, 400, "invalid_test_type"},
		{"unknown code", "/api/verify", deviceKey, map[string]any{"code": "00000000"}, 400, "code_invalid"},
		{"type not accepted", "/api/verify", deviceKey, map[string]any{"code": likely.Code, "accept": []string{"confirmed"}}, 412, "unsupported_test_type"},
		{"certificate: not JSON", "/api/certificate", deviceKey, []byte("[]"), 400, "token_invalid"},
		{"certificate: bad token", "/api/certificate", deviceKey, map[string]any{"token": "x.y.z", "ekeyhmac": strings.Repeat("A", 43)}, 400, "token_invalid"},
		{"issue: bad type", "/api/issue", labKey, map[string]any{"testType": "positive"}, 400, "invalid_test_type"},
		{"issue: old date", "/api/issue", labKey, map[string]any{"testType": "confirmed", "testDate": "2020-01-01"}, 400, "invalid_date"},
		{"issue: uuid taken", "/api/issue", labKey, map[string]any{"testType": "confirmed", "uuid": likely.UUID}, 409, "uuid_already_exists"},
		{"status of another provider's code", "/api/checkcodestatus", clinicKey, map[string]any{"uuid": likely.UUID}, 404, "code_not_found"},
		{"expire another provider's code", "/api/expirecode", clinicKey, map[string]any{"uuid": likely.UUID}, 404, "code_not_found"},
	} {
		w := ts.api(tc.path, tc.key, tc.body)
		got := apiAnswer(t, w)
		if w.Code != tc.status || got["errorCode"] != tc.code || got["error"] == "" {
			t.Errorf("%s: %d %v, want %d %s", tc.name, w.Code, got, tc.status, tc.code)
		}
	}
	// The 412 left the code unused: an app that accepts likely gets it.
	w := ts.api("/api/verify", deviceKey, map[string]any{"code": likely.Code, "accept": []string{"likely"}})
	ans := apiAnswer(t, w)
	if w.Code != http.StatusOK || ans["testtype"] != "likely" {
		t.Fatalf("the code after a 412: %d %v", w.Code, ans)
	}
	if w := ts.api("/api/verify", deviceKey, map[string]any{"code": likely.Code}); apiAnswer(t, w)["errorCode"] != "code_invalid" {
		t.Fatalf("a used code: %s", w.Body)
	}
	w = ts.api("/api/certificate", deviceKey, map[string]any{"token": ans["token"], "ekeyhmac": "c2hvcnQ="})
	if got := apiAnswer(t, w); w.Code != 400 || got["errorCode"] != "hmac_invalid" {
		t.Fatalf("a short ekeyhmac: %d %v", w.Code, got)
	}
	// Expiring is for the issuing provider; an expired code is refused.
	other := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed"})
	if w := ts.api("/api/expirecode", labKey, map[string]any{"uuid": other.UUID}); w.Code != http.StatusOK {
		t.Fatalf("expire: %d %s", w.Code, w.Body)
	}
	if w := ts.api("/api/verify", deviceKey, map[string]any{"code": other.Code}); apiAnswer(t, w)["errorCode"] != "code_expired" {
		t.Fatalf("an expired code: %s", w.Body)
	}
}

// A decoy after a valid key is a 200 shaped as a real answer that changes
// nothing, and its token is valid nowhere; batches answer each item in
// place, at most ten.
func TestVerificationChaffAndBatch(t *testing.T) {
	ts := verifyServer(t)
	real := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed"})
	w := ts.do(http.MethodPost, "/api/verify", map[string]any{"code": real.Code},
		map[string]string{"X-API-Key": deviceKey, "Content-Type": "application/json", "X-Chaff": "1"})
	got := apiAnswer(t, w)
	token, _ := got["token"].(string)
	if w.Code != http.StatusOK || got["padding"] == "" || got["error"] != nil || strings.Count(token, ".") != 2 {
		t.Fatalf("chaff: %d %v", w.Code, got)
	}
	if code, _ := ts.node.FSM().VerificationCode(real.UUID); code.GetClaimedUnix() != 0 {
		t.Fatal("a decoy used a real code up")
	}
	mac := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if w := ts.api("/api/certificate", deviceKey, map[string]any{"token": token, "ekeyhmac": mac}); apiAnswer(t, w)["errorCode"] != "token_invalid" {
		t.Fatalf("a decoy's token on /api/certificate: %d %s", w.Code, w.Body)
	}
	w = ts.api("/api/batch-issue", labKey, map[string]any{"codes": []map[string]any{{"testType": "confirmed"}, {"testType": "bogus"}, {"testType": "negative"}}})
	batch := decode[verify.BatchIssueResponse](t, w)
	if w.Code != http.StatusOK || len(batch.Codes) != 3 || batch.Codes[0].Code == "" || batch.Codes[1].ErrorCode != "invalid_test_type" || batch.Codes[2].Code == "" {
		t.Fatalf("batch: %d %+v", w.Code, batch)
	}
	eleven := make([]map[string]any, 11)
	for i := range eleven {
		eleven[i] = map[string]any{"testType": "confirmed"}
	}
	if w := ts.api("/api/batch-issue", labKey, map[string]any{"codes": eleven}); w.Code != http.StatusBadRequest {
		t.Fatalf("a batch of 11: %d %s", w.Code, w.Body)
	}
}

// testType and accept are read in any case, as the reference lowercases
// them: a code issued as "Likely" is verified by an app that accepts
// "LIKELY" and carries the type in lower case.
func TestTestTypesInAnyCase(t *testing.T) {
	ts := verifyServer(t)
	issued := issueCode(t, ts, labKey, map[string]any{"testType": "Likely"})
	w := ts.api("/api/verify", deviceKey, map[string]any{"code": issued.Code, "accept": []string{"LIKELY"}})
	if got := apiAnswer(t, w); w.Code != http.StatusOK || got["testtype"] != "likely" {
		t.Fatalf("verify: %d %v", w.Code, got)
	}
}

// sameSizes fails when a two-sample Kolmogorov-Smirnov test tells decoy
// answer sizes from real ones (at a level of one in ten thousand), and
// when it would not tell them apart with decoys shift bytes shorter (the
// test has the power to see that much).
func sameSizes(t *testing.T, name string, real, decoy []int, shift int) {
	t.Helper()
	critical := 2.15 * math.Sqrt(2.0/float64(len(real))) // alpha = 1e-4
	if d := kstest.Statistic(real, decoy); d > critical {
		t.Errorf("%s: answer sizes differ, KS statistic %.3f over %.3f (real %v..., decoy %v...)", name, d, critical, real[:5], decoy[:5])
	}
	shifted := make([]int, len(decoy))
	for i, s := range decoy {
		shifted[i] = s - shift
	}
	if kstest.Statistic(real, shifted) <= critical {
		t.Errorf("%s: the test does not notice answers %d bytes shorter", name, shift)
	}
}

// Decoy answers of the device API have the sizes of real ones (as
// TestDecoyAnswerSizes for uploads): a token or certificate left out, as
// before, made them 450-670 bytes shorter.
func TestVerificationDecoySizes(t *testing.T) {
	ts := verifyServer(t)
	const n = 300 // enough that a 450-byte shift is seen every time, not most times
	chaff := map[string]string{"X-API-Key": deviceKey, "Content-Type": "application/json", "X-Chaff": "1"}
	mac := base64.StdEncoding.EncodeToString(make([]byte, 32))
	var realVerify, decoyVerify, realCert, decoyCert []int
	for range n {
		issued := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed", SymptomDate: time.Now().UTC().AddDate(0, 0, -3).Format("2006-01-02")})
		w := ts.api("/api/verify", deviceKey, map[string]any{"code": issued.Code})
		realVerify = append(realVerify, w.Body.Len())
		token := apiAnswer(t, w)["token"]
		w = ts.api("/api/certificate", deviceKey, map[string]any{"token": token, "ekeyhmac": mac})
		if w.Code != http.StatusOK {
			t.Fatalf("certificate: %d %s", w.Code, w.Body)
		}
		realCert = append(realCert, w.Body.Len())
		decoyVerify = append(decoyVerify, ts.do(http.MethodPost, "/api/verify", map[string]any{"code": "12345678"}, chaff).Body.Len())
		decoyCert = append(decoyCert, ts.do(http.MethodPost, "/api/certificate", map[string]any{"token": "x", "ekeyhmac": mac}, chaff).Body.Len())
	}
	sameSizes(t, "verify", realVerify, decoyVerify, 450)
	sameSizes(t, "certificate", realCert, decoyCert, 450)
}

// Decoy answers of the issuing API have the sizes of real ones: an issue
// decoy of padding alone, as before, was about 200 bytes shorter, which
// takes some hundreds of answers to see (1,500 see it every time: at 600
// the shifted statistic stood 0.03-0.08 over the critical value).
func TestIssuingDecoySizes(t *testing.T) {
	ts := verifyServer(t)
	const n = 1500 // enough that a 200-byte shift is seen every time, not most times
	chaff := map[string]string{"X-API-Key": labKey, "Content-Type": "application/json", "X-Chaff": "1"}
	var realIssue, decoyIssue, realStatus, decoyStatus []int
	for range n {
		req := verify.IssueRequest{TestType: "confirmed", SymptomDate: time.Now().UTC().AddDate(0, 0, -3).Format("2006-01-02")}
		w := ts.api("/api/issue", labKey, req)
		realIssue = append(realIssue, w.Body.Len())
		issued := decode[verify.IssueResponse](t, w)
		decoyIssue = append(decoyIssue, ts.do(http.MethodPost, "/api/issue", req, chaff).Body.Len())
		realStatus = append(realStatus, ts.api("/api/checkcodestatus", labKey, map[string]any{"uuid": issued.UUID}).Body.Len())
		decoyStatus = append(decoyStatus, ts.do(http.MethodPost, "/api/checkcodestatus", map[string]any{"uuid": issued.UUID}, chaff).Body.Len())
	}
	sameSizes(t, "issue", realIssue, decoyIssue, 200)
	sameSizes(t, "checkcodestatus", realStatus, decoyStatus, 200)
}

// Decoys spend none of a client's rate allowance, as the reference limits
// after its chaff handler: after its decoys the client's real requests
// still have their burst. Decoys have an allowance of their own: a flood
// of them is limited too.
func TestChaffBeforeRateLimit(t *testing.T) {
	v := &Verification{Issuer: verifyIssuer, Audience: verifyIssuer, Region: "test",
		TokenKeys: []verify.SigningKey{signingKey(t, "t1")}, CertKeys: []verify.SigningKey{signingKey(t, "c1")}}
	ts := newTestServerConfig(t, Config{Verification: v, Limits: Limits{PublishRate: 0.001, PublishBurst: 2}})
	h := sha256.Sum256([]byte(deviceKey))
	if err := command.PutAPIKey(context.Background(), ts.node, &fsmpb.ApiKey{Hash: h[:], Name: "app", Kind: fsm.APIKeyDevice}); err != nil {
		t.Fatal(err)
	}
	chaff := map[string]string{"X-API-Key": deviceKey, "Content-Type": "application/json", "X-Chaff": "1"}
	for i := range 2 {
		if w := ts.do(http.MethodPost, "/api/verify", map[string]any{"code": "12345678"}, chaff); w.Code != http.StatusOK {
			t.Fatalf("decoy %d: %d", i, w.Code)
		}
	}
	if w := ts.do(http.MethodPost, "/api/verify", map[string]any{"code": "12345678"}, chaff); w.Code != http.StatusTooManyRequests {
		t.Fatalf("a third decoy past a burst of 2: %d", w.Code)
	}
	var statuses []int
	for range 3 {
		statuses = append(statuses, ts.api("/api/verify", deviceKey, map[string]any{"code": "12345678", "accept": []string{"bogus"}}).Code)
	}
	if statuses[0] == http.StatusTooManyRequests || statuses[1] == http.StatusTooManyRequests || statuses[2] != http.StatusTooManyRequests {
		t.Fatalf("real requests after three decoys, burst 2: %v", statuses)
	}
}

// /api/verify refuses an unknown, a used and an expired code after the
// same wait (codeWait), so the time of the answer does not tell whether a
// code exists; before, a used or expired one was refused in milliseconds.
func TestVerifyRefusalsTakeAlike(t *testing.T) {
	ts := verifyServer(t)
	used := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed"})
	if w := ts.api("/api/verify", deviceKey, map[string]any{"code": used.Code}); w.Code != http.StatusOK {
		t.Fatalf("first verify: %d %s", w.Code, w.Body)
	}
	expired := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed"})
	if w := ts.api("/api/expirecode", labKey, map[string]any{"uuid": expired.UUID}); w.Code != http.StatusOK {
		t.Fatalf("expire: %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct{ name, code, want string }{
		{"unknown", "87654321", "code_invalid"},
		{"used", used.Code, "code_invalid"},
		{"expired", expired.Code, "code_expired"},
	} {
		start := time.Now()
		w := ts.api("/api/verify", deviceKey, map[string]any{"code": tc.code})
		if got := apiAnswer(t, w)["errorCode"]; got != tc.want {
			t.Fatalf("%s code: %d %v, want %s", tc.name, w.Code, got, tc.want)
		}
		if took := time.Since(start); took < codeWait {
			t.Fatalf("%s code refused after %v, before the %v every refusal takes", tc.name, took, codeWait)
		}
	}
}
