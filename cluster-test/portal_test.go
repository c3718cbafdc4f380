package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/covid-backend/covid-backend/publish"
)

// browser starts headless Chromium (Debian's, which .ci/run installs).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (.ci/run installs Debian's chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1100, 900))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(alloc)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// run runs browser steps, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// text reads the text of the element a CSS selector finds.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}

// addWorker adds a portal account through node via, with the password
// "correct horse battery staple", for provider (none: "") and roles.
func (c *cluster) addWorker(via, email, name, provider, roles string) {
	c.t.Helper()
	pwFile := filepath.Join(c.dir, "worker-password")
	writeFile(c.t, pwFile, []byte("correct horse battery staple\n"))
	args := []string{"users", "add", "--addr", c.node(via).url(), "--email", email, "--name", name, "--roles", roles, "--password-file", pwFile}
	if provider != "" {
		args = append(args, "--provider", provider)
	}
	c.cli(args...)
}

// css is a CSS selector for the browser.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// signIn fills the sign-in form of the portal at base and waits for an
// element of the page it leads to.
func signIn(t *testing.T, ctx context.Context, base, email, password, waitFor string) {
	t.Helper()
	run(t, ctx, "sign in as "+email, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), email), chromedp.SendKeys(css("#password"), password),
		chromedp.Click(css("#signin")), chromedp.WaitVisible(css(waitFor)))
}

// shot saves a screenshot of the page into $COVID_SCREENSHOT_DIR, if set.
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("COVID_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A health care worker signs in with a real browser, issues a code and
// reads it off the page; an app uses that code (through other nodes) to
// publish; a code expired on the page is refused; a CSV is issued in bulk
// and, sent again, issues nothing twice; a form without its CSRF token is
// refused.
func TestPortalInABrowser(t *testing.T) {
	c, deviceKey, _ := verificationCluster(t)
	c.addWorker("n1", "worker@lab.example", "Wanda Worker", "lab", "issue,codes,bulk")
	base := c.node("n2").url() + "/portal"
	ctx := browser(t)

	signIn(t, ctx, base, "worker@lab.example", "not the password", ".error")
	shot(t, ctx, "portal-login")
	signIn(t, ctx, base, "worker@lab.example", "correct horse battery staple", "#issue")
	shot(t, ctx, "portal-issue")
	run(t, ctx, "issue", chromedp.Click(css("#issue")), chromedp.WaitVisible(css("#code")))
	code, uuid := text(t, ctx, "#code"), text(t, ctx, "#uuid")
	shot(t, ctx, "portal-code")
	if len(code) != 8 || uuid == "" {
		t.Fatalf("the page shows code %q, id %q", code, uuid)
	}
	// The answer came after a redirect: a reload shows the same code and
	// issues none.
	run(t, ctx, "reload the code's page", chromedp.Reload(), chromedp.WaitVisible(css("#code")))
	if again, againID := text(t, ctx, "#code"), text(t, ctx, "#uuid"); again != code || againID != uuid {
		t.Fatalf("after a reload the page shows %q (%s), first %q (%s)", again, againID, code, uuid)
	}
	// The page says what the code was issued for (the form's first test
	// type, no dates given).
	if summary := text(t, ctx, "#summary"); !strings.Contains(summary, "confirmed") || !strings.Contains(summary, "not given") {
		t.Fatalf("the code's page does not echo what it was issued for: %q", summary)
	}
	// The page's own script runs under its Content-Security-Policy.
	if cd := text(t, ctx, "#countdown"); !strings.HasPrefix(cd, "expires in 1") {
		t.Fatalf("countdown %q: the page's script did not run", cd)
	}

	// The app's side, on other nodes.
	status, v := c.api("n3", "/api/verify", deviceKey, map[string]any{"code": code})
	if status != http.StatusOK {
		t.Fatalf("the code read off the page: %d %v", status, v)
	}
	req, mac, _ := publish.RandomKeys(verifyAppID, 14, time.Now())
	status, cert := c.api("n1", "/api/certificate", deviceKey, map[string]any{"token": v["token"], "ekeyhmac": mac})
	if status != http.StatusOK {
		t.Fatalf("certificate: %d %v", status, cert)
	}
	req.VerificationPayload = cert["certificate"].(string)
	if _, err := c.publishRequest(c.node("n2").url(), req); err != nil {
		t.Fatalf("publish: %v", err)
	}

	// Issue another, expire it on the codes page; the app is refused.
	run(t, ctx, "issue a second code", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#issue")), chromedp.Click(css("#issue")),
		chromedp.WaitVisible(css("#code")))
	second, uuid := text(t, ctx, "#code"), text(t, ctx, "#uuid")
	run(t, ctx, "expire it", chromedp.Navigate(base+"/codes"), chromedp.WaitVisible(css("#codes")),
		chromedp.Click(fmt.Sprintf(`//tr[td[@class="uuid" and text()=%q]]//button`, uuid)), chromedp.WaitVisible(css("#confirm")),
		chromedp.Click(css("#confirm")), chromedp.WaitVisible(css(".notice")))
	statuses := text(t, ctx, "#codes")
	shot(t, ctx, "portal-codes")
	// Times are shown in the browser's time zone, UTC in their title.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "the codes in India", chromedp.Reload(), chromedp.WaitVisible(css("#codes time")))
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector("#codes time"); return e.textContent + "|" + e.title })()`))
	local, utc, _ := strings.Cut(shown, "|")
	if err != nil || !strings.HasSuffix(utc, " UTC") || !strings.Contains(local, "GMT+5:30") && !strings.Contains(local, "IST") {
		t.Fatalf("a time on the codes page shows %q, titled %q (%v): want India's time, UTC in the title", local, utc, err)
	}
	if !strings.Contains(statuses, "expired (by hand)") || !strings.Contains(statuses, "used") {
		t.Fatalf("codes page after expiring: %s", statuses)
	}
	if status, out := c.api("n1", "/api/verify", deviceKey, map[string]any{"code": second}); out["errorCode"] != "code_expired" {
		t.Fatalf("the expired code: %d %v", status, out)
	}

	// Bulk: three lines issued, two of them alike (two patients of the same
	// test and day); the same file again issues nothing twice and shows
	// the three codes again.
	csvFile := filepath.Join(t.TempDir(), "codes.csv")
	writeFile(t, csvFile, []byte("testType,testDate\nconfirmed,"+time.Now().UTC().Format("2006-01-02")+"\nlikely,\nlikely,\n"))
	for round, want := range []string{"3 codes issued now", "0 codes issued now"} {
		run(t, ctx, "bulk upload", chromedp.Navigate(base+"/bulk"), chromedp.WaitVisible(css("#file")),
			chromedp.SetUploadFiles(css("#file"), []string{csvFile}), chromedp.Click(css("#upload")), chromedp.WaitVisible(css("#results")))
		results := text(t, ctx, "main")
		shown, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`Array.from(document.querySelectorAll("#results td.code-cell")).filter(e => /^\d{8}$/.test(e.textContent)).length`))
		if !strings.Contains(results, want) || err != nil || shown != 3 {
			t.Fatalf("bulk round %d: %d codes shown (%v): %s", round, shown, err, results)
		}
		if round == 0 {
			shot(t, ctx, "portal-bulk")
		}
	}

	// A form posted with the session but without its CSRF token.
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := got.Cookies
	form := url.Values{"testType": {"confirmed"}}
	post, _ := http.NewRequest(http.MethodPost, base+"/issue", strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		post.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err := c.client.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(cookies) == 0 {
		t.Fatalf("an issue form without its CSRF token: %d (cookies %d)", resp.StatusCode, len(cookies))
	}
}

// A region operator signs in, sees the region's members and the leader on
// the console, and rolls back a submission from the page with a reason;
// the keys are revoked and the revocation is listed.
func TestOperatorConsoleInABrowser(t *testing.T) {
	c, _, _ := verificationCluster(t)
	c.addWorker("n1", "ops@region.example", "Olga Operator", "", "operator")
	keys, err := c.upload(c.node("n2").url())
	if err != nil {
		t.Fatal(err)
	}
	base := c.node("n3").url() + "/portal"
	ctx := browser(t)
	signIn(t, ctx, base, "ops@region.example", "correct horse battery staple", "#members")
	shot(t, ctx, "portal-region")
	members, leader := text(t, ctx, "#members"), text(t, ctx, "#leader")
	for _, id := range c.ids(3) {
		if !strings.Contains(members, id) {
			t.Fatalf("the console does not list %s: %s", id, members)
		}
	}
	if want := c.leaderAmong(c.ids(3)...); leader != want {
		t.Fatalf("the console says the leader is %q, the region %q", leader, want)
	}
	run(t, ctx, "statistics", chromedp.Navigate(base+"/stats"), chromedp.WaitVisible(css("#stats")))
	shot(t, ctx, "portal-stats")
	if rows, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.querySelectorAll("#stats tbody tr").length`)); err != nil || rows != 14 {
		t.Fatalf("the statistics list %d days (%v), want 14", rows, err)
	}
	run(t, ctx, "roll back", chromedp.Navigate(base+"/revocations"), chromedp.WaitVisible(css("#submissions")),
		chromedp.SendKeys(css("#submissions input[name=reason]"), "test upload in production"),
		chromedp.Click(css("#submissions button.revoke")), chromedp.WaitVisible(css("#confirm")), chromedp.Click(css("#confirm")),
		chromedp.WaitVisible(css(".notice")))
	shot(t, ctx, "portal-revocations")
	if subs := text(t, ctx, "#submissions"); !strings.Contains(subs, "rolled back") || strings.Contains(subs, "Roll back\n") {
		t.Fatalf("the rolled-back submission is not marked so: %s", subs)
	}
	if list := text(t, ctx, "#revocations"); !strings.Contains(list, "test upload in production") {
		t.Fatalf("revocations page: %s", list)
	}
	c.waitFor("n1 to hold the uploaded keys as revoked", 10*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, c.node("n1").url()+"/v1/admin/keys", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var out struct {
			Keys []struct {
				Key     string `json:"key"`
				Revoked bool   `json:"revoked"`
			} `json:"keys"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		revoked := 0
		for _, k := range out.Keys {
			if k.Revoked && slices.Contains(keys, k.Key) {
				revoked++
			}
		}
		return revoked == len(keys)
	})
	// The audit log of the node the operator reads (a follower applies the
	// event a moment after the leader committed it).
	c.waitFor("the roll-back in the audit log", 10*time.Second, func() bool {
		run(t, ctx, "audit log", chromedp.Navigate(base+"/audit"), chromedp.WaitVisible(css("#audit")))
		log := text(t, ctx, "#audit")
		return strings.Contains(log, "revoke submission") && strings.Contains(log, "ops@region.example")
	})
}

// signInStatus posts a sign-in to a node's portal, sending both halves of
// the CSRF double submit, and returns the status: 303 signs in.
func (c *cluster) signInStatus(id, email, password string) int {
	c.t.Helper()
	form := url.Values{"csrf": {"tok"}, "email": {email}, "password": {password}}
	req, _ := http.NewRequest(http.MethodPost, c.node(id).url()+"/portal/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "covid_login_csrf", Value: "tok"})
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatalf("sign in on %s: %v", id, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A sign-in lock set through one node holds at once on a follower that
// lags (its member links delayed 300 ms): five wrong passwords through the
// leader or the other follower, then the right one through the lagging
// follower at once, is refused. Without catching up first, the lagging
// follower read the account before the lock and let the password in.
func TestPortalLockHoldsOnEveryNode(t *testing.T) {
	_, exportFlags := exportKey(t, t.TempDir())
	c := newCluster(t, append(append(exportFlags, "--seal-interval", "1h"), verificationFlags(t)...)...)
	c.proxy = newLinkProxy(t)
	c.form(3)
	c.cli("providers", "add", "--addr", c.node("n1").url(), "--id", "lab", "--name", "Lab")
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	followers := without(c.ids(3), leader)
	lagging := followers[1]
	for _, via := range []string{leader, followers[0]} {
		email := "w-" + via + "@lab.example"
		c.addWorker(via, email, "W", "lab", "issue")
		c.waitFor(lagging+" to know "+email, 10*time.Second, func() bool {
			_, body, err := c.tryAdminGet(lagging, "/v1/admin/users")
			return err == nil && strings.Contains(string(body), email)
		})
		c.proxy.set(c.node(lagging).ip, linkFault{delay: 300 * time.Millisecond})
		for range 5 {
			c.signInStatus(via, email, "wrong")
		}
		status := c.signInStatus(lagging, email, "correct horse battery staple")
		c.proxy.set(c.node(lagging).ip, linkFault{})
		if status == http.StatusSeeOther {
			t.Fatalf("locked through %s, %s signed in on the lagging %s", via, email, lagging)
		}
	}
}

// Every page of the portal fits a phone's screen (390x844, issue 22: the
// header ran 532 px wide, Recent codes 730 px with Expire off-screen, Roll
// back off-screen): no page is wider than the screen, and the buttons a
// worker or an operator needs lie within it.
func TestPortalOnAPhone(t *testing.T) {
	c, _, _ := verificationCluster(t)
	c.addWorker("n1", "lead@lab.example", "Lena Lead", "lab", "issue,codes,bulk,users,apikeys")
	c.addWorker("n1", "ops@region.example", "Olga Operator", "", "operator")
	if _, err := c.upload(c.node("n1").url()); err != nil {
		t.Fatal(err) // a submission to roll back
	}
	base := c.node("n1").url() + "/portal"
	type page struct {
		path, wait string
		within     []string
	}
	for _, who := range []struct {
		email, home string
		pages       []page
	}{
		{"lead@lab.example", "#issue", []page{
			{"/", "#issue", []string{"header form button", "#issue"}},
			{"/codes", "#codes", []string{"header form button", "button.expire"}},
			{"/bulk", "#upload", []string{"#upload", "#file"}},
			{"/users", "main h1", nil},
			{"/apikeys", "main h1", nil},
			{"/audit", "main h1", nil},
			{"/stats", "#stats", []string{"#csv"}},
			{"/account", "main h1", []string{"form button.primary"}},
		}},
		{"ops@region.example", "#members", []page{
			{"/region", "#members", []string{"header form button"}},
			{"/revocations", "#submissions", []string{"button.revoke", "input[name=reason]"}},
			{"/hub", "#hub-countries", []string{"form button.primary", "#auth"}},
			{"/appconfig", "#document", []string{"#save"}},
			{"/service", "#stage", []string{"#date", "#end"}},
			{"/audit", "main h1", nil},
			{"/stats", "#stats", []string{"#provider", "#csv"}},
		}},
	} {
		ctx := browser(t)
		run(t, ctx, "a phone's screen", chromedp.EmulateViewport(390, 844))
		signIn(t, ctx, base, who.email, "correct horse battery staple", who.home)
		if who.home == "#issue" {
			run(t, ctx, "issue a code", chromedp.Click(css("#issue")), chromedp.WaitVisible(css("#code")))
			shot(t, ctx, "phone-code")
		}
		// Every page at both widths and in both languages (Dutch words run
		// longer): a screenshot of each, and none wider than a phone.
		for _, lang := range []string{"nl", "en"} {
			for _, width := range []int64{1280, 390} {
				run(t, ctx, "a screen", chromedp.EmulateViewport(width, 900))
				for _, p := range who.pages {
					run(t, ctx, "open "+p.path, chromedp.Navigate(base+p.path+"?lang="+lang), chromedp.WaitVisible(css(p.wait)))
					if got := text(t, ctx, "#lang-switch"); lang == "nl" && got != "English" || lang == "en" && got != "Nederlands" {
						t.Fatalf("%s in %s offers %q", p.path, lang, got)
					}
					who, _, _ := strings.Cut(who.email, "@") // lead, ops
					shot(t, ctx, fmt.Sprintf("%s-%d-%s%s", lang, width, who, strings.ReplaceAll(strings.TrimSuffix(p.path, "/"), "/", "-")))
					if width == 390 {
						fitsPhone(t, ctx, p.path+" ("+lang+")", p.within)
					}
				}
			}
		}
		if who.home == "#issue" { // setting up a second factor: the QR code and its key on the screen
			run(t, ctx, "set up a second factor", chromedp.Navigate(base+"/account"), chromedp.Click(css("#start-totp")),
				chromedp.WaitVisible(css("#qr")))
			shot(t, ctx, "phone-account-totp")
			fitsPhone(t, ctx, "/account/totp", []string{"#qr", "#secret", "form button.primary"})
		}
		if who.home == "#issue" { // a bulk run's results: a card a line, the CSV link on the screen
			csvFile := filepath.Join(t.TempDir(), "phone.csv")
			writeFile(t, csvFile, []byte("testType\nconfirmed\nlikely\nflu\n"))
			run(t, ctx, "bulk on a phone", chromedp.Navigate(base+"/bulk"), chromedp.WaitVisible(css("#file")),
				chromedp.SetUploadFiles(css("#file"), []string{csvFile}), chromedp.Click(css("#upload")), chromedp.WaitVisible(css("#results")))
			shot(t, ctx, "phone-bulk-run")
			fitsPhone(t, ctx, "/bulk/run", []string{"#run-csv", "#results td.code-cell"})
		}
		if who.home == "#issue" { // an invitation: the lead makes the link, the new worker opens it on a phone
			invite(t, ctx, base)
		}
	}
}

// invite has the signed-in manager invite a new worker, whose phone opens
// the link (its token in the fragment, moved into the form by the page),
// sets a password and signs in with it.
func invite(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	run(t, ctx, "invite", chromedp.Navigate(base+"/users"), chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), "nina@lab.example"), chromedp.SendKeys(css("#name"), "Nina New"),
		chromedp.Click(css("#role-issue")), chromedp.Click(css("form[action='/portal/users'] button.primary")),
		chromedp.WaitVisible(css("#invite-link")))
	link := text(t, ctx, "#invite-link")
	shot(t, ctx, "phone-users-invited")
	fitsPhone(t, ctx, "/users (a link just made)", []string{"#invite-link"})
	phone := browser(t)
	run(t, phone, "a phone's screen", chromedp.EmulateViewport(390, 844))
	run(t, phone, "open the invitation", chromedp.Navigate(link), chromedp.WaitVisible(css("#set-password")))
	token, err := chromedp.Run(phone, chromedp.Evaluate[string](`document.getElementById("token").value`))
	if err != nil || token == "" || !strings.HasSuffix(link, "#"+token) {
		t.Fatalf("the invitation page's form holds %q (%v), the link %q", token, err, link)
	}
	shot(t, phone, "phone-invite")
	fitsPhone(t, phone, "/invite", []string{"#set-password"})
	run(t, phone, "set the password", chromedp.SendKeys(css("#password"), "nina's long password"),
		chromedp.SendKeys(css("#repeat"), "nina's long password"), chromedp.Click(css("#set-password")), chromedp.WaitVisible(css("#signin")))
	signIn(t, phone, base, "nina@lab.example", "nina's long password", "#issue")
}

// fitsPhone checks that the page is no wider than a 390 px screen and that
// the elements the selectors find lie within it.
func fitsPhone(t *testing.T, ctx context.Context, path string, within []string) {
	t.Helper()
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 390 {
		shot(t, ctx, "phone-too-wide")
		t.Errorf("%s is %d px wide on a 390 px screen", path, width)
	}
	for _, sel := range within {
		right, err := chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf(
			`(() => { const e = document.querySelector(%q); return e ? e.getBoundingClientRect().right : -1 })()`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		if right < 0 || right > 390 {
			t.Errorf("%s: %s ends at %.0f px on a 390 px screen (-1: missing)", path, sel, right)
		}
	}
}
