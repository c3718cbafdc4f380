package api

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/stats"
	"github.com/covid-backend/covid-backend/verify"
)

// statsRegion is a verification server where the lab issued 12 codes
// today and expired 2 of them, and the clinic issued 3: counts both above
// and below the threshold of 10.
func statsRegion(t *testing.T) *testServer {
	t.Helper()
	ts := verifyServer(t)
	var uuids []string
	for range 12 {
		uuids = append(uuids, issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed"}).UUID)
	}
	for _, u := range uuids[:2] {
		if _, err := command.ExpireVerificationCode(context.Background(), ts.node, u, "lab"); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		issueCode(t, ts, clinicKey, verify.IssueRequest{TestType: "confirmed"})
	}
	addOperator(t, ts)
	return ts
}

// todayRow is the statistics table's row of today, as a browser shows it.
func todayRow(t *testing.T, page string) string {
	t.Helper()
	page = html.UnescapeString(page)
	i := strings.Index(page, `<td data-label="Day">`+time.Now().UTC().Format(time.DateOnly))
	if i < 0 {
		t.Fatalf("no row of today on the page:\n%s", page)
	}
	return page[i : i+strings.Index(page[i:], "</tr>")]
}

// The statistics page: a lab's account that follows codes sees its own
// figures only (whatever it asks for), small counts read "<10" in the
// table and in the charts' titles, an account without the role is turned
// away, and an operator picks the region or any provider.
func TestPortalStatistics(t *testing.T) {
	ts := statsRegion(t)
	addWorker(t, ts, "m@lab.example", nil, "codes")
	addWorker(t, ts, "n@lab.example", nil, "issue")
	lab := portalClient(t, ts)
	lab.signIn("m@lab.example", "correct horse battery staple")
	status, page, _ := lab.get("/stats?provider=clinic")
	if status != http.StatusOK || !strings.Contains(page, "Statistics of lab") {
		t.Fatalf("the lab's statistics: %d", status)
	}
	row := todayRow(t, page)
	for _, want := range []string{`"Codes issued">12<`, `"Used">0<`, `"Expired unused"><10<`, `"Minutes to use (median)">–<`} {
		if !strings.Contains(row, want) {
			t.Errorf("the lab's row of today lacks %s: %s", want, row)
		}
	}
	if !strings.Contains(page, "&lt;10</title>") || strings.Contains(page, ": 2</title>") {
		t.Error("a chart shows a held-back count")
	}
	nurse := portalClient(t, ts)
	nurse.signIn("n@lab.example", "correct horse battery staple")
	if status, _, _ := nurse.get("/stats"); status != http.StatusForbidden {
		t.Errorf("a nurse without the codes role: %d, want 403", status)
	}

	ops := operatorPortal(t, ts)
	_, page, _ = ops.get("/stats")
	if row := todayRow(t, page); !strings.Contains(row, `"Codes issued">15<`) || !strings.Contains(page, `<option value="clinic">`) {
		t.Errorf("the region's row of today: %s", row)
	}
	_, page, _ = ops.get("/stats?provider=clinic")
	if row := todayRow(t, page); !strings.Contains(row, `"Codes issued"><10<`) {
		t.Errorf("the clinic's row of today: %s", row)
	}
	if status, _, _ := ops.get("/stats?provider=nobody"); status != http.StatusNotFound {
		t.Errorf("a provider that does not exist: %d, want 404", status)
	}
}

// The CSV download holds back as the page does, for the series the
// account may see.
func TestPortalStatisticsCSV(t *testing.T) {
	ts := statsRegion(t)
	addWorker(t, ts, "m@lab.example", nil, "codes")
	lab := portalClient(t, ts)
	lab.signIn("m@lab.example", "correct horse battery staple")
	status, body, h := lab.get("/stats.csv")
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), "statistics-lab-") {
		t.Fatalf("CSV: %d %v", status, h)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := rows[len(rows)-1]
	if len(rows) != 15 || strings.Join(rows[0][:5], ",") != "date,provider,codes_issued,codes_used,codes_expired" ||
		strings.Join(last[:5], ",") != time.Now().UTC().Format(time.DateOnly)+",lab,12,0,<10" {
		t.Errorf("CSV: %d rows, header %v, today %v", len(rows), rows[0], last)
	}
}

// statsKey registers a stats key (of a provider, or the region's with
// provider "") and returns it.
func statsKey(t *testing.T, ts *testServer, name, provider string) string {
	t.Helper()
	h := sha256.Sum256([]byte(name))
	if err := command.PutAPIKey(context.Background(), ts.node, &fsmpb.ApiKey{Hash: h[:], Name: name, Kind: fsm.APIKeyStats, Provider: provider}); err != nil {
		t.Fatal(err)
	}
	return name
}

// The stats API answers a stats key alone, in the reference's shape
// (statistics newest first, each a date and its data), with the key's
// scope: the region's key reads the region and every provider, a
// provider's key its own figures whatever the path; small counts are null
// as they are "<10" on the pages.
func TestStatsAPI(t *testing.T) {
	ts := statsRegion(t)
	region, lab := statsKey(t, ts, "ha-stats", ""), statsKey(t, ts, "lab-stats", "lab")
	get := func(path, key string) *httptest.ResponseRecorder {
		return ts.do(http.MethodGet, path, nil, map[string]string{"X-API-Key": key})
	}
	for _, key := range []string{deviceKey, labKey, "no such key"} {
		if w := get("/api/stats/realm.json", key); w.Code != http.StatusUnauthorized {
			t.Errorf("stats with key %q: %d, want 401", key, w.Code)
		}
	}
	type doc struct {
		Region, Provider string
		Statistics       []struct {
			Date time.Time
			Data map[string]*int64
		}
	}
	today := func(d doc) map[string]*int64 {
		if len(d.Statistics) != stats.Days || d.Statistics[0].Date.Format(time.DateOnly) != time.Now().UTC().Format(time.DateOnly) {
			t.Fatalf("%d days, the first %v: want %d, today first", len(d.Statistics), d.Statistics[0].Date, stats.Days)
		}
		return d.Statistics[0].Data
	}
	num := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	for _, tc := range []struct {
		name, path, key, provider string
		issued, expired           string
	}{
		{"the region's key", "/api/stats/realm.json", region, "", "15", "null"},
		{"the lab's key", "/api/stats/realm.json", lab, "lab", "12", "null"},
	} {
		w := get(tc.path, tc.key)
		d := decode[doc](t, w)
		if w.Code != http.StatusOK || d.Provider != tc.provider {
			t.Fatalf("%s: %d, provider %q", tc.name, w.Code, d.Provider)
		}
		if data := today(d); num(data["codes_issued"]) != tc.issued || num(data["codes_expired"]) != tc.expired || num(data["codes_claimed"]) != "0" {
			t.Errorf("%s: today issued %s expired %s claimed %s, want %s, %s, 0", tc.name, num(data["codes_issued"]),
				num(data["codes_expired"]), num(data["codes_claimed"]), tc.issued, tc.expired)
		}
	}
	all := decode[struct{ Providers []doc }](t, get("/api/stats/providers.json", region))
	own := decode[struct{ Providers []doc }](t, get("/api/stats/providers.json", lab))
	if len(all.Providers) != 2 || all.Providers[0].Provider != "clinic" || num(today(all.Providers[0])["codes_issued"]) != "null" ||
		len(own.Providers) != 1 || own.Providers[0].Provider != "lab" {
		t.Errorf("providers: the region's key sees %d, the lab's %d", len(all.Providers), len(own.Providers))
	}
	w := get("/api/stats/providers.csv", region)
	rows, err := csv.NewReader(w.Body).ReadAll()
	if err != nil || w.Code != http.StatusOK || len(rows) != 1+2*stats.Days || rows[len(rows)-1][1] != "lab" || rows[len(rows)-1][2] != "12" {
		t.Errorf("providers.csv: %d, %d rows (%v)", w.Code, len(rows), err)
	}
	// A provider's stats key goes with its provider.
	if err := command.RevokeProvider(context.Background(), ts.node, "lab"); err != nil {
		t.Fatal(err)
	}
	if w := get("/api/stats/realm.json", lab); w.Code != http.StatusUnauthorized {
		t.Errorf("the stats key of a revoked provider: %d, want 401", w.Code)
	}
}

// A provider's manager makes a statistics key on the API keys page, reads
// the stats API with it and revokes it after a page that asks; a key of
// another provider it may not revoke. An operator revokes another
// provider from the console: its API keys issue no code from then on.
func TestPortalRevokesKeysAndProviders(t *testing.T) {
	ts := statsRegion(t)
	addWorker(t, ts, "boss@lab.example", nil, "apikeys")
	b := portalClient(t, ts)
	b.signIn("boss@lab.example", "correct horse battery staple")
	_, page, _ := b.get("/apikeys")
	tok := formToken(t, page)
	if status, _ := b.post("/apikeys", url.Values{"csrf": {tok}, "name": {"lab-dashboard"}, "kind": {"stats"}}); status != http.StatusSeeOther {
		t.Fatalf("create a stats key: %d", status)
	}
	_, page, _ = b.get("/apikeys")
	m := regexp.MustCompile(`id="newkey">([^<]+)<`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "statistics") {
		t.Fatal("the list does not show the new statistics key")
	}
	read := func() int {
		return ts.do(http.MethodGet, "/api/stats/realm.json", nil, map[string]string{"X-API-Key": m[1]}).Code
	}
	if status := read(); status != http.StatusOK {
		t.Fatalf("the new stats key: %d", status)
	}
	form := url.Values{"csrf": {tok}, "name": {"lab-dashboard"}}
	if status, ask := b.post("/apikeys/revoke", form); status != http.StatusOK || !strings.Contains(ask, `id="confirm"`) || read() != http.StatusOK {
		t.Fatalf("revoke, unconfirmed: %d, or the key stopped before it was confirmed", status)
	}
	form.Set("confirmed", "yes")
	if status, _ := b.post("/apikeys/revoke", form); status != http.StatusSeeOther || read() != http.StatusUnauthorized {
		t.Fatalf("revoke, confirmed: %d; the key then reads %d", status, read())
	}
	if status, _ := b.post("/apikeys/revoke", url.Values{"csrf": {tok}, "name": {"clinic-system"}, "confirmed": {"yes"}}); status != http.StatusNotFound {
		t.Errorf("revoking another provider's key: %d, want 404", status)
	}

	ops := operatorPortal(t, ts)
	_, console, _ := ops.get("/region")
	if !strings.Contains(console, `action="/portal/region/providers/revoke"`) || !strings.Contains(console, `action="/portal/region/apikeys/revoke"`) {
		t.Fatal("the console has no revoke buttons")
	}
	if status, _ := ops.post("/region/providers/revoke", url.Values{"csrf": {formToken(t, console)}, "provider": {"clinic"}, "confirmed": {"yes"}}); status != http.StatusSeeOther {
		t.Fatalf("revoke a provider: %d", status)
	}
	if w := ts.api("/api/issue", clinicKey, map[string]any{"testType": "confirmed"}); w.Code != http.StatusUnauthorized {
		t.Errorf("the revoked provider's key on /api/issue: %d, want 401", w.Code)
	}
	if w := ts.api("/api/issue", labKey, map[string]any{"testType": "confirmed"}); w.Code != http.StatusOK {
		t.Errorf("another provider's key: %d", w.Code)
	}
}

// The audit log filters by actor, action and day, and pages: 100 events a
// page, newest first, with links to older and newer pages; a day that is
// not a date is refused in plain words. A manager sees its provider's
// events only.
func TestPortalAuditFiltersAndPages(t *testing.T) {
	ts := statsRegion(t)
	addWorker(t, ts, "boss@lab.example", nil, "users")
	ctx := context.Background()
	for i := range 150 {
		actor, provider := "a@lab.example", "lab"
		if i%3 == 0 {
			actor, provider = "c@clinic.example", "clinic"
		}
		if err := command.Audit(ctx, ts.node, &fsmpb.AuditEvent{Actor: actor, Provider: provider, Action: "issue code", Target: fmt.Sprint("code-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(page string) int { return strings.Count(page, `<td data-label="Time">`) }
	ops := operatorPortal(t, ts)
	_, first, _ := ops.get("/audit?action=issue+code")
	older := regexp.MustCompile(`id="older" href="([^"]+)"`).FindStringSubmatch(html.UnescapeString(first))
	if rows(first) != 100 || older == nil || strings.Contains(first, `id="newer"`) || !strings.Contains(first, "code-149<") {
		t.Fatalf("the first page: %d rows, older %v", rows(first), older)
	}
	_, second, _ := ops.get(strings.TrimPrefix(older[1], "/portal"))
	if rows(second) != 50 || strings.Contains(second, `id="older"`) || !strings.Contains(second, `id="newer"`) || !strings.Contains(second, "code-0<") {
		t.Fatalf("the second page: %d rows", rows(second))
	}
	_, clinic, _ := ops.get("/audit?actor=C@CLINIC.example&day=" + time.Now().UTC().Format(time.DateOnly))
	if rows(clinic) != 50 {
		t.Errorf("one actor on one day: %d rows, want 50", rows(clinic))
	}
	if _, none, _ := ops.get("/audit?day=" + time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)); rows(none) != 0 || !strings.Contains(none, "Nothing recorded that matches") {
		t.Errorf("yesterday: %d rows", rows(none))
	}
	if status, bad, _ := ops.get("/audit?day=yesterday"); status != http.StatusBadRequest || !strings.Contains(bad, "not a date") {
		t.Errorf("a day that is not a date: %d", status)
	}
	boss := portalClient(t, ts)
	boss.signIn("boss@lab.example", "correct horse battery staple")
	if _, own, _ := boss.get("/audit?actor=c@clinic.example"); rows(own) != 0 {
		t.Errorf("a lab's manager sees %d of the clinic's events", rows(own))
	}
}
