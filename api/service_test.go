package api

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// An operator schedules the end of service through the admin API (bad
// requests named); from its wind-down uploads and the verification API's
// writes answer 410 service_ended in their protocols' error bodies, while
// decoys answer as before and a lab still reads a code's status; the app
// configuration's pointer tells the status; a cancel takes codes again.
func TestServiceWindDownRefusals(t *testing.T) {
	ts := verifyServer(t)
	if w := ts.admin(http.MethodPost, "/v1/admin/appconfig", []byte(appConfigDocument)); w.Code != http.StatusOK {
		t.Fatalf("app configuration: %d %s", w.Code, w.Body)
	}
	today := time.Now().UTC().Format("2006-01-02")
	issued := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed", SymptomDate: today, UUID: "before-the-end"})
	for _, tc := range []struct {
		name, body, says string
		status           int
	}{
		{"no time", `{"deleteAfter": "24h"}`, "windDownFrom", http.StatusBadRequest},
		{"a date without a time", `{"windDownFrom": "2027-03-01", "deleteAfter": "24h"}`, "not a time like", http.StatusBadRequest},
		{"a negative deletion", `{"windDownFrom": "2027-03-01T00:00:00Z", "deleteAfter": "-1h"}`, "deleteAfter", http.StatusBadRequest},
		{"a cancel with a date", `{"cancel": true, "windDownFrom": "2027-03-01T00:00:00Z"}`, "cancel takes no", http.StatusBadRequest},
		{"nothing to cancel", `{"cancel": true}`, "no end of service is scheduled", http.StatusBadRequest},
		{"an unknown field", `{"endAt": "2027-03-01T00:00:00Z"}`, "endAt", http.StatusBadRequest},
	} {
		if w := ts.admin(http.MethodPost, "/v1/admin/service", []byte(tc.body)); w.Code != tc.status || !strings.Contains(w.Body.String(), tc.says) {
			t.Fatalf("%s: %d %s, want %d saying %q", tc.name, w.Code, w.Body, tc.status, tc.says)
		}
	}
	if v := decode[ServiceView](t, ts.admin(http.MethodGet, "/v1/admin/service", nil)); v.Stage != "active" {
		t.Fatalf("before: %+v", v)
	}
	later := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	v := decode[ServiceView](t, ts.admin(http.MethodPost, "/v1/admin/service", ServiceRequest{WindDownFrom: later.Format(time.RFC3339), DeleteAfter: "168h"}))
	if v.Stage != "scheduled" || v.WindDownFrom != later.Format(time.RFC3339) || v.DeleteAfter != "168h0m0s" || v.EndDue <= v.WindDownFrom || v.DeletionDue <= v.EndDue {
		t.Fatalf("scheduled: %+v", v)
	}
	issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed", SymptomDate: today}) // still taken

	v = decode[ServiceView](t, ts.admin(http.MethodPost, "/v1/admin/service", ServiceRequest{WindDownFrom: "2020-01-01T00:00:00Z", DeleteAfter: "0s"}))
	if v.Stage != "winding-down" || v.WindDownFrom < today {
		t.Fatalf("a wind-down in the past starts now: %+v", v)
	}
	const decoyLatency = 300 * time.Millisecond
	ts.srv.recent.Record(decoyLatency) // what a decoy waits, as long as a real upload took
	for _, tc := range []struct {
		path, key string
		body      any
	}{
		{"/api/issue", labKey, verify.IssueRequest{TestType: "confirmed", SymptomDate: today}},
		{"/api/batch-issue", labKey, map[string]any{"codes": []verify.IssueRequest{{TestType: "confirmed", SymptomDate: today}}}},
		{"/api/verify", deviceKey, map[string]any{"code": issued.Code}},
		{"/api/certificate", deviceKey, map[string]any{"token": "x", "ekeyhmac": "eA=="}},
		{"/api/user-report", deviceKey, map[string]any{"phone": "+31612345678", "nonce": "bm9uY2U=", "symptomDate": today}},
	} {
		start := time.Now()
		w := ts.api(tc.path, tc.key, tc.body)
		if took := time.Since(start); took < decoyLatency {
			t.Fatalf("%s refused after %v, sooner than a decoy's answer (%v): a watcher could tell them apart", tc.path, took, decoyLatency)
		}
		if ans := apiAnswer(t, w); w.Code != http.StatusGone || ans["errorCode"] != verify.CodeServiceEnded || !strings.Contains(ans["error"].(string), "stopped taking uploads") {
			t.Fatalf("%s while winding down: %d %v", tc.path, w.Code, ans)
		}
		decoy := ts.do(http.MethodPost, tc.path, tc.body, map[string]string{"X-API-Key": tc.key, "Content-Type": "application/json", "X-Chaff": "1"})
		if decoy.Code != http.StatusOK {
			t.Fatalf("a decoy to %s: %d %s", tc.path, decoy.Code, decoy.Body)
		}
	}
	if w := ts.api("/api/checkcodestatus", labKey, map[string]any{"uuid": "before-the-end"}); w.Code != http.StatusOK {
		t.Fatalf("a code's status while winding down: %d %s", w.Code, w.Body)
	}
	start := time.Now()
	w := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT)
	if took := time.Since(start); took < decoyLatency {
		t.Fatalf("an upload refused after %v, sooner than a decoy's answer", took)
	}
	if resp := decode[publish.Response](t, w); w.Code != http.StatusGone || resp.Code != publish.CodeServiceEnded || !strings.Contains(resp.ErrorMessage, "no keys or codes are taken") {
		t.Fatalf("an upload while winding down: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), map[string]string{"Content-Type": "application/json", "X-Chaff": "1"}); w.Code != http.StatusOK {
		t.Fatalf("a decoy upload: %d %s", w.Code, w.Body)
	}
	token := newProvider(t, ts, "clinic-by-token")
	if w := ts.do(http.MethodPost, "/v1/codes", nil, map[string]string{"Authorization": "Bearer " + token}); w.Code != http.StatusGone || !strings.Contains(w.Body.String(), "service_ended") {
		t.Fatalf("/v1/codes while winding down: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodGet, "/v1/appconfig", nil, nil); !strings.Contains(w.Body.String(), `"service":"winding-down"`) {
		t.Fatalf("pointer: %s", w.Body)
	}

	if v := decode[ServiceView](t, ts.admin(http.MethodPost, "/v1/admin/service", ServiceRequest{Cancel: true})); v.Stage != "active" {
		t.Fatalf("cancelled: %+v", v)
	}
	issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed", SymptomDate: today})
	if w := ts.do(http.MethodGet, "/v1/appconfig", nil, nil); !strings.Contains(w.Body.String(), `"service":"active"`) {
		t.Fatalf("pointer after the cancel: %s", w.Body)
	}
}

// An operator schedules, moves and cancels the end of service on the
// console, each after a confirmation that says what happens and writes
// nothing until confirmed; a wrong date is named; each change is audited;
// a health care worker may not see the page.
func TestPortalEndOfService(t *testing.T) {
	ts := verifyServer(t)
	addOperator(t, ts)
	ops := operatorPortal(t, ts)
	_, page, _ := ops.get("/service")
	if !strings.Contains(page, "The service is active") {
		t.Fatal("the page of an active service")
	}
	post := func(form url.Values) (int, string) {
		t.Helper()
		_, page, _ := ops.get("/service")
		form.Set("csrf", formToken(t, page))
		return ops.post("/service", form)
	}
	if status, answer := post(url.Values{"action": {"end"}, "date": {"1 March"}, "delete_days": {"7"}}); status != http.StatusBadRequest || !strings.Contains(answer, "as a date like 2027-03-01") {
		t.Fatalf("a wrong date: %d", status)
	}
	if status, answer := post(url.Values{"action": {"end"}, "date": {"2099-03-01"}, "delete_days": {"400"}}); status != http.StatusBadRequest || !strings.Contains(answer, "from 0 to 366") {
		t.Fatalf("a deletion after 400 days: %d", status)
	}
	form := url.Values{"action": {"end"}, "date": {"2099-03-01"}, "delete_days": {"30"}}
	if status, answer := post(form); status != http.StatusOK || !strings.Contains(html.UnescapeString(answer), "From 2099-03-01 00:00 UTC no upload") || ts.node.FSM().Service().GetWindDownUnix() != 0 {
		t.Fatalf("the confirmation: %d, service %v", status, ts.node.FSM().Service())
	}
	form.Set("confirmed", "yes")
	if status, _ := post(form); status != http.StatusSeeOther {
		t.Fatalf("confirmed: %d", status)
	}
	svc := ts.node.FSM().Service()
	if svc.GetWindDownUnix() != time.Date(2099, 3, 1, 0, 0, 0, 0, time.UTC).Unix() || svc.GetDeleteAfterSeconds() != 30*86_400 || svc.GetAuthor() != "ops@region.example" {
		t.Fatalf("scheduled: %v", svc)
	}
	_, page, _ = ops.get("/service")
	if !strings.Contains(page, "An end of service is scheduled") || !strings.Contains(page, `datetime="2099-03-01T00:00:00Z"`) || !strings.Contains(page, `value="2099-03-01"`) {
		t.Fatal("the page of a scheduled end")
	}
	// Set to 18:00 through the admin API, the form sent again for the
	// deletion alone keeps that time (it shows the date only).
	evening := time.Date(2099, 3, 1, 18, 0, 0, 0, time.UTC)
	if w := ts.admin(http.MethodPost, "/v1/admin/service", ServiceRequest{WindDownFrom: evening.Format(time.RFC3339), DeleteAfter: "720h"}); w.Code != http.StatusOK {
		t.Fatalf("admin API: %d %s", w.Code, w.Body)
	}
	if status, _ := post(url.Values{"action": {"end"}, "date": {"2099-03-01"}, "delete_days": {"10"}, "confirmed": {"yes"}}); status != http.StatusSeeOther {
		t.Fatalf("the deletion moved: %d", status)
	}
	if svc := ts.node.FSM().Service(); svc.GetWindDownUnix() != evening.Unix() || svc.GetDeleteAfterSeconds() != 10*86_400 {
		t.Fatalf("after the deletion moved: %v", svc)
	}
	if status, _ := post(url.Values{"action": {"cancel"}, "confirmed": {"yes"}}); status != http.StatusSeeOther || ts.node.FSM().Service().GetWindDownUnix() != 0 {
		t.Fatalf("cancel: %d, %v", status, ts.node.FSM().Service())
	}
	if status, answer := post(url.Values{"action": {"cancel"}, "confirmed": {"yes"}}); status != http.StatusBadRequest || !strings.Contains(answer, "No end of service is scheduled") {
		t.Fatalf("cancel again: %d", status)
	}
	if events := auditOf(ts, "", 5); len(events) < 4 || events[0].GetTarget() != "cancelled" || events[1].GetTarget() != "uploads stop 2099-03-01" || events[2].GetActor() != "admin-api" {
		t.Fatalf("audit %v", events)
	}
	addWorker(t, ts, "w@lab.example", nil, "issue")
	worker := portalClientFrom(t, ts, "127.0.0.2")
	worker.signIn("w@lab.example", "correct horse battery staple")
	if status, _, _ := worker.get("/service"); status != http.StatusForbidden {
		t.Fatalf("a worker: %d", status)
	}
}
