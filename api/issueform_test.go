package api

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/sms"
)

// A refused issue keeps the form as it was sent and says, next to each
// field, what is wrong with it in plain words: a date outside the last 28
// days, a number that cannot get a text message; nothing is issued.
func TestPortalIssueFormSaysWhichField(t *testing.T) {
	g := newFakeGateway(t)
	ts := verifyServerWith(t, sms.NewWebhook(g.srv.URL, ""))
	addWorker(t, ts, "w@lab.example", nil, "issue")
	b := portalClient(t, ts)
	b.signIn("w@lab.example", "correct horse battery staple")
	_, home, _ := b.get("/")
	tooOld := time.Now().UTC().AddDate(0, 0, -40).Format(time.DateOnly)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	for _, tc := range []struct {
		name, field string
		form        url.Values
		want        []string
	}{
		{"a test date of 40 days ago", "testDate", url.Values{"testType": {"likely"}, "testDate": {tooOld}, "symptomDate": {yesterday}},
			[]string{`id="testDate-error">Pick a day from`, `value="` + tooOld + `" aria-invalid="true"`, `value="` + yesterday + `"`, `value="likely" checked`}},
		{"a landline", "phone", url.Values{"testType": {"confirmed"}, "phone": {"+1 (202) 456-1111 ext"}},
			[]string{`id="phone-error">Give a mobile number`, `name="phone" value="+1 (202) 456-1111 ext"`}},
	} {
		tc.form.Set("csrf", formToken(t, home))
		status, page := b.post("/issue", tc.form)
		page = html.UnescapeString(page)
		if status != http.StatusBadRequest || !strings.Contains(page, "correct the fields marked below") {
			t.Errorf("%s: %d", tc.name, status)
		}
		for _, want := range tc.want {
			if !strings.Contains(page, want) {
				t.Errorf("%s: the page lacks %s", tc.name, want)
			}
		}
	}
	g.mu.Lock()
	sent := len(g.sent)
	g.mu.Unlock()
	if n := len(ts.node.FSM().VerificationCodes("lab", 10)); n != 0 || sent != 0 {
		t.Fatalf("%d codes issued and %d SMS sent by refused forms", n, sent)
	}
}
