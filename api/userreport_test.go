package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/sms"
)

// fakeGateway is an SMS gateway that keeps what it was asked to send, or
// fails when told to.
type fakeGateway struct {
	mu   sync.Mutex
	sent []struct{ To, Message string }
	fail bool
	srv  *httptest.Server
}

func newFakeGateway(t *testing.T) *fakeGateway {
	g := &fakeGateway{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ To, Message string }
		json.NewDecoder(r.Body).Decode(&m)
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.fail {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		g.sent = append(g.sent, m)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// last is the long code of the last message, and its number.
func (g *fakeGateway) last(t *testing.T) (to, long string) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sent) == 0 {
		t.Fatal("no SMS was sent")
	}
	m := g.sent[len(g.sent)-1]
	found := regexp.MustCompile(`c=([a-z0-9]{16})`).FindStringSubmatch(m.Message)
	if found == nil {
		t.Fatalf("no long code in %q", m.Message)
	}
	return m.To, found[1]
}

// A code issued with a phone is sent by SMS: its long code lives a day
// and verifies; when the gateway fails the answer says so and the code is
// expired, so no code is out that nobody received.
func TestIssueWithSMS(t *testing.T) {
	g := newFakeGateway(t)
	ts := verifyServerWith(t, sms.NewWebhook(g.srv.URL, ""))
	issued := issueCode(t, ts, labKey, map[string]any{"testType": "confirmed", "phone": "+1 (202) 555-0143"})
	to, long := g.last(t)
	if to != "+12025550143" || issued.LongExpiresAtTimestamp-time.Now().Unix() < 23*3600 {
		t.Fatalf("sent to %q, long code expires %d", to, issued.LongExpiresAtTimestamp)
	}
	if w := ts.api("/api/verify", deviceKey, map[string]any{"code": long}); w.Code != http.StatusOK {
		t.Fatalf("the long code: %d %s", w.Code, w.Body)
	}
	g.mu.Lock()
	g.fail = true
	g.mu.Unlock()
	w := ts.api("/api/issue", labKey, map[string]any{"testType": "confirmed", "phone": "+12025550143", "uuid": "sms-fails"})
	if got := apiAnswer(t, w); w.Code != http.StatusInternalServerError || got["errorCode"] != "sms_failure" {
		t.Fatalf("a failed SMS: %d %v", w.Code, got)
	}
	if code, ok := ts.node.FSM().VerificationCode("sms-fails"); !ok || code.GetExpiredByUnix() == 0 {
		t.Fatalf("the code whose SMS failed: %v", code)
	}
	if w := ts.api("/api/issue", labKey, map[string]any{"testType": "confirmed", "phone": "call me"}); apiAnswer(t, w)["errorCode"] != "phone_number_invalid" {
		t.Fatalf("a phone that is not one: %s", w.Body)
	}
}

// A user report: only with an SMS gateway, one live report per phone, and
// its code only with the nonce of the app that asked for it. As the
// reference: a second report to the phone is 200 and sends nothing (no
// oracle on who reported), a URL-safe nonce is taken, and each bad field
// has the reference's code.
func TestUserReport(t *testing.T) {
	nonce := make([]byte, 256)
	rand.Read(nonce)
	report := map[string]any{"phone": "+12025550199", "nonce": base64.RawURLEncoding.EncodeToString(nonce),
		"symptomDate": time.Now().UTC().Format("2006-01-02")}
	if w := verifyServer(t).api("/api/user-report", deviceKey, report); w.Code != http.StatusBadRequest || apiAnswer(t, w)["errorCode"] != "unsupported_test_type" {
		t.Fatalf("without SMS: %d %s", w.Code, w.Body)
	}
	g := newFakeGateway(t)
	ts := verifyServerWith(t, sms.NewWebhook(g.srv.URL, ""))
	w := ts.api("/api/user-report", deviceKey, report)
	got := apiAnswer(t, w)
	if w.Code != http.StatusOK || got["expiresAt"] == "" || got["expiresAtTimestamp"] == nil {
		t.Fatalf("user report: %d %v", w.Code, got)
	}
	_, long := g.last(t)
	g.mu.Lock()
	sent := len(g.sent)
	g.mu.Unlock()
	again := ts.api("/api/user-report", deviceKey, report)
	if got := apiAnswer(t, again); again.Code != http.StatusOK || got["expiresAt"] == "" || got["expiresAtTimestamp"] == nil {
		t.Fatalf("a second report to the phone: %d %s", again.Code, again.Body)
	}
	g.mu.Lock()
	if len(g.sent) != sent {
		t.Fatal("a second report to the phone sent another SMS")
	}
	g.mu.Unlock()
	for name, tc := range map[string]struct {
		body map[string]any
		code string
	}{
		"a short nonce":      {map[string]any{"phone": "+12025550188", "nonce": "c2hvcnQ="}, "unparsable_request"},
		"a nonce not base64": {map[string]any{"phone": "+12025550188", "nonce": "!!"}, "unparsable_request"},
		"no nonce":           {map[string]any{"phone": "+12025550188"}, "missing_nonce"},
		"no phone":           {map[string]any{"nonce": report["nonce"]}, "missing_phone"},
		"a bad phone":        {map[string]any{"phone": "call me", "nonce": report["nonce"]}, "phone_number_invalid"},
	} {
		if w := ts.api("/api/user-report", deviceKey, tc.body); w.Code != http.StatusBadRequest || apiAnswer(t, w)["errorCode"] != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", name, w.Code, w.Body, tc.code)
		}
	}
	other := make([]byte, 256)
	w = ts.api("/api/verify", deviceKey, map[string]any{"code": long, "nonce": base64.StdEncoding.EncodeToString(other)})
	if got := apiAnswer(t, w); w.Code != http.StatusBadRequest || got["errorCode"] != "code_invalid" {
		t.Fatalf("another nonce: %d %v", w.Code, got)
	}
	w = ts.api("/api/verify", deviceKey, map[string]any{"code": long, "nonce": report["nonce"], "accept": []string{"user-report"}})
	if got := apiAnswer(t, w); w.Code != http.StatusOK || got["testtype"] != "user-report" {
		t.Fatalf("the reporter's app: %d %v", w.Code, got)
	}
}

// The region counts the codes it sends by SMS against its policy: past the
// quota per number (24 hours) a lab is told 429 and the number is sent
// nothing, and a user report to that number is answered 200 as ever and
// sends nothing (no answer tells whom codes went to); past the quota per
// hour every code by SMS is 503. Operators read the count with the policy.
func TestSMSQuotas(t *testing.T) {
	g := newFakeGateway(t)
	ts := verifyServerWith(t, sms.NewWebhook(g.srv.URL, ""))
	if w := ts.admin(http.MethodPut, "/v1/admin/policy", PolicyRequest{SMSPerHour: 3, SMSPerNumberPerDay: 2}); w.Code != http.StatusOK {
		t.Fatalf("set the quotas: %d %s", w.Code, w.Body)
	}
	sent := func() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.sent) }
	issue := func(phone string) (int, string) {
		w := ts.api("/api/issue", labKey, map[string]any{"testType": "confirmed", "phone": phone})
		code, _ := apiAnswer(t, w)["errorCode"].(string)
		return w.Code, code
	}
	for range 2 {
		if status, code := issue("+12025550111"); status != http.StatusOK {
			t.Fatalf("a code by SMS within the quotas: %d %s", status, code)
		}
	}
	before := sent()
	if status, code := issue("+12025550111"); status != http.StatusTooManyRequests || code != "sms_number_quota_reached" {
		t.Fatalf("a third code to one number: %d %s", status, code)
	}
	nonce := make([]byte, 256)
	rand.Read(nonce)
	report := ts.api("/api/user-report", deviceKey, map[string]any{"phone": "+12025550111", "nonce": base64.StdEncoding.EncodeToString(nonce)})
	if report.Code != http.StatusOK || sent() != before {
		t.Fatalf("a user report to a number past its quota: %d %s, %d SMS more", report.Code, report.Body, sent()-before)
	}
	if status, code := issue("+12025550122"); status != http.StatusOK {
		t.Fatalf("the third code of the hour: %d %s", status, code)
	}
	if status, code := issue("+12025550133"); status != http.StatusServiceUnavailable || code != "sms_quota_reached" {
		t.Fatalf("a fourth code in the hour: %d %s", status, code)
	}
	if w := ts.api("/api/issue", labKey, map[string]any{"testType": "confirmed"}); w.Code != http.StatusOK {
		t.Fatalf("a code without SMS past the quota: %d %s", w.Code, w.Body)
	}
	policy := decode[PolicyView](t, ts.admin(http.MethodGet, "/v1/admin/policy", nil))
	if policy.SMSLastHour != 3 || policy.SMSPerHour != 3 || policy.SMSPerNumberPerDay != 2 {
		t.Fatalf("policy as operators see it: %+v", policy)
	}
}

// A provider issues at most the policy's daily quota of codes (a stolen
// lab key or a runaway script issues only so many): past it the issuing
// API answers 429 quota_exceeded, as the reference does for a realm's
// quota, other providers go on, and the provider's workers see the count
// on the issue page.
func TestProviderQuota(t *testing.T) {
	ts := verifyServer(t)
	if w := ts.admin(http.MethodPut, "/v1/admin/policy", PolicyRequest{CodesPerProviderPerDay: 2}); w.Code != http.StatusOK {
		t.Fatalf("set the quota: %d %s", w.Code, w.Body)
	}
	for range 2 {
		issueCode(t, ts, labKey, map[string]any{"testType": "confirmed"})
	}
	w := ts.api("/api/issue", labKey, map[string]any{"testType": "confirmed"})
	if got := apiAnswer(t, w); w.Code != http.StatusTooManyRequests || got["errorCode"] != "quota_exceeded" {
		t.Fatalf("a third code in a day: %d %v", w.Code, got)
	}
	issueCode(t, ts, clinicKey, map[string]any{"testType": "confirmed"})
	addWorker(t, ts, "w@lab.example", nil, "issue")
	b := portalClient(t, ts)
	b.signIn("w@lab.example", "correct horse battery staple")
	if _, home, _ := b.get("/"); !strings.Contains(home, "issued 2 of at most 2 codes") {
		t.Fatal("the issue page does not show the provider's count against its quota")
	}
}
