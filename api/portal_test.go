package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/sms"
	"github.com/covid-backend/covid-backend/verify"
)

// browserish is a client with a cookie jar on the portal over HTTPS (the
// session cookie is Secure).
type browserish struct {
	t    *testing.T
	base string
	c    *http.Client
}

func portalClient(t *testing.T, ts *testServer) *browserish {
	return portalClientFrom(t, ts, "127.0.0.1")
}

// portalClientFrom is a portalClient whose requests come from another
// loopback address (one more client).
func portalClientFrom(t *testing.T, ts *testServer, ip string) *browserish {
	t.Helper()
	srv := httptest.NewTLSServer(ts.h)
	t.Cleanup(srv.Close)
	c := srv.Client()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c.Transport.(*http.Transport).DialContext = dialer.DialContext
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browserish{t: t, base: srv.URL + "/portal", c: c}
}

func (b *browserish) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browserish) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formToken is the CSRF token of the page's first form.
func formToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

func addWorker(t *testing.T, ts *testServer, email string, totpSecret []byte, roles ...string) {
	t.Helper()
	_, err := command.PutUser(context.Background(), ts.node, &fsmpb.User{Email: email, Name: "W", Provider: "lab", Roles: roles,
		PasswordHash: account.HashPassword("correct horse battery staple"), TotpSecret: totpSecret})
	if err != nil {
		t.Fatal(err)
	}
}

// addOperator adds the region's operator ops@region.example (no
// provider), whose password is the workers'.
func addOperator(t *testing.T, ts *testServer) {
	t.Helper()
	if _, err := command.PutUser(context.Background(), ts.node, &fsmpb.User{Email: "ops@region.example", Name: "O", Roles: []string{"operator"},
		PasswordHash: account.HashPassword("correct horse battery staple")}); err != nil {
		t.Fatal(err)
	}
}

// operatorPortal is a browser signed in to the portal as the operator
// addOperator added.
func operatorPortal(t *testing.T, ts *testServer) *browserish {
	t.Helper()
	ops := portalClient(t, ts)
	ops.signIn("ops@region.example", "correct horse battery staple")
	return ops
}

// totpWorker adds an account of the lab with a second factor, whose key
// it returns.
func totpWorker(t *testing.T, ts *testServer, email string, roles ...string) *otp.Key {
	t.Helper()
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "test", AccountName: email})
	if err != nil {
		t.Fatal(err)
	}
	addWorker(t, ts, email, []byte(key.Secret()), roles...)
	return key
}

func (b *browserish) signIn(email, password string) (int, string) {
	b.t.Helper()
	_, page, _ := b.get("/login")
	return b.post("/login", url.Values{"csrf": {formToken(b.t, page)}, "email": {email}, "password": {password}})
}

// Sign-in: the same answer, no sooner than the same floor, for an unknown
// account, a wrong password and a locked account (the sixth try said
// "locked" only for accounts that exist); five wrong passwords lock the
// account even against the right one; the sign-in form needs its CSRF
// token; every page has the security headers.
func TestPortalSignIn(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "w@lab.example", nil, "issue")
	b := portalClient(t, ts)
	_, _, h := b.get("/login")
	for name, want := range map[string]string{"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if !strings.Contains(h.Get(name), want) {
			t.Errorf("%s: %q", name, h.Get(name))
		}
	}
	if status, _ := b.post("/login", url.Values{"email": {"w@lab.example"}, "password": {"correct horse battery staple"}}); status != http.StatusForbidden {
		t.Fatalf("sign-in without its CSRF token: %d", status)
	}
	answer := func(email, password string) (int, string) {
		t.Helper()
		start := time.Now()
		status, page := b.signIn(email, password)
		if took := time.Since(start); took < 500*time.Millisecond {
			t.Fatalf("%s refused after %v, before the floor every refusal takes", email, took)
		}
		i := strings.Index(page, `class="error"`)
		if i < 0 {
			t.Fatalf("%s: no error on the page: %d", email, status)
		}
		return status, page[i : i+strings.Index(page[i:], "</")]
	}
	for range 5 {
		answer("w@lab.example", "wrong")
	}
	locked, lockedMsg := answer("w@lab.example", "correct horse battery staple")
	for range 6 {
		if status, msg := answer("nobody@lab.example", "whatever"); status != locked || msg != lockedMsg {
			t.Fatalf("an unknown email answers %d %q, a locked account %d %q", status, msg, locked, lockedMsg)
		}
	}
	if locked != http.StatusUnauthorized || !strings.Contains(lockedMsg, "Wrong email or password") {
		t.Fatalf("the right password on a locked account: %d %q", locked, lockedMsg)
	}
	if u, _ := ts.node.FSM().User("w@lab.example"); len(u.GetLoginClients()) != 1 || u.GetLoginClients()[0].GetLockedUntilUnix() <= time.Now().Unix() {
		t.Fatalf("lock not replicated: %v", u)
	}
	if status, _, _ := b.get("/"); status != http.StatusSeeOther {
		t.Fatalf("a page without a session: %d, want a redirect to sign in", status)
	}
	// The account's managers see its refused sign-ins in the audit log (the
	// five wrong passwords; the tries on the lock and on unknown emails
	// write nothing).
	refused := 0
	for _, ev := range auditOf(ts, "lab", 50) {
		if ev.GetAction() == "refused sign-in" && ev.GetActor() == "w@lab.example" {
			refused++
		}
	}
	if refused != 5 {
		t.Fatalf("%d refused sign-ins in the audit log, want 5", refused)
	}
}

// A lockout holds one client out of one account: five wrong passwords
// from one address lock that address out, while the worker signs in from
// another; twenty from any addresses lock the account, except to the
// right password with the right second factor (strangers cannot keep a
// worker with TOTP out); a sign-in clears the account's count.
func TestPortalLockoutPerClient(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "plain@lab.example", nil, "issue")
	key := totpWorker(t, ts, "totp@lab.example", "issue")
	const right = "correct horse battery staple"
	stranger := portalClientFrom(t, ts, "127.0.0.2")
	for range 5 {
		stranger.signIn("plain@lab.example", "wrong")
	}
	if status, _ := stranger.signIn("plain@lab.example", right); status != http.StatusUnauthorized {
		t.Fatalf("the right password from the locked-out address: %d", status)
	}
	if status, _ := portalClient(t, ts).signIn("plain@lab.example", right); status != http.StatusSeeOther {
		t.Fatalf("the worker from another address: %d", status)
	}
	for _, email := range []string{"plain@lab.example", "totp@lab.example"} {
		var wg sync.WaitGroup
		for i := range 4 { // at most four hashes at once (portal.maxHashing)
			wg.Go(func() {
				b := portalClientFrom(t, ts, fmt.Sprintf("127.0.1.%d", i+1))
				for range 5 {
					b.signIn(email, "wrong")
				}
			})
		}
		wg.Wait()
		if u, _ := ts.node.FSM().User(email); u.GetLockedUntilUnix() <= time.Now().Unix() {
			t.Fatalf("%s not locked after twenty wrong passwords from four addresses: %v", email, u)
		}
	}
	worker := portalClientFrom(t, ts, "127.0.2.1")
	if status, _ := worker.signIn("plain@lab.example", right); status != http.StatusUnauthorized {
		t.Fatalf("a locked account without a second factor: %d", status)
	}
	status, page := worker.signIn("totp@lab.example", right)
	code, _ := totp.GenerateCode(key.Secret(), time.Now())
	if status != http.StatusOK || !strings.Contains(page, "authenticator") {
		t.Fatalf("a locked account with a second factor, the right password: %d", status)
	}
	if status, _ := worker.post("/totp", url.Values{"csrf": {formToken(t, page)}, "code": {code}}); status != http.StatusSeeOther {
		t.Fatalf("a locked account with a second factor, the right code: %d", status)
	}
	if u, _ := ts.node.FSM().User("totp@lab.example"); u.GetLockedUntilUnix() != 0 || u.GetFailures() != 0 {
		t.Fatalf("a sign-in left the account's count: %v", u)
	}
}

// A second factor made through the admin API (users add --totp) is kept
// sealed: the account in the state (and so its snapshots and backups)
// does not hold the secret, and the portal opens it to check a sign-in.
func TestSecondFactorSealedAtRest(t *testing.T) {
	ts := verifyServer(t)
	const password = "correct horse battery staple"
	w := ts.admin(http.MethodPost, "/v1/admin/users", UserRequest{Email: "W@lab.example", Name: "W", Provider: "lab",
		Roles: []string{"issue"}, Password: password, TOTP: true})
	if w.Code != http.StatusOK {
		t.Fatalf("add an account with a second factor: %d %s", w.Code, w.Body)
	}
	link, err := otp.NewKeyFromURL(decode[struct {
		TOTPURL string `json:"totp_url"`
	}](t, w).TOTPURL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := ts.node.FSM().User("w@lab.example")
	if !account.TOTPSealed(u.GetTotpSecret()) || bytes.Contains(u.GetTotpSecret(), []byte(link.Secret())) {
		t.Fatalf("the state holds the secret as %q", u.GetTotpSecret())
	}
	b := portalClient(t, ts)
	_, page := b.signIn("w@lab.example", password)
	code, _ := totp.GenerateCode(link.Secret(), time.Now())
	if status, _ := b.post("/totp", url.Values{"csrf": {formToken(t, page)}, "code": {code}}); status != http.StatusSeeOther {
		t.Fatalf("sign-in with the sealed second factor: %d", status)
	}
}

// A worker changes their own password: the current one is checked, the
// new one twice; this browser stays signed in, the account's other
// sessions end, and only the new password signs in afterwards. A refusal
// says what is wrong on the same page.
func TestPortalChangeOwnPassword(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "w@lab.example", nil, "issue")
	const old, next = "correct horse battery staple", "a brand new passphrase"
	b, elsewhere := portalClient(t, ts), portalClient(t, ts)
	b.signIn("w@lab.example", old)
	elsewhere.signIn("w@lab.example", old)
	_, page, _ := b.get("/account")
	tok := formToken(t, page)
	for _, tc := range []struct {
		name                     string
		current, password, again string
		says                     string
	}{
		{"wrong current password", "wrong", next, next, "current password is wrong"},
		{"too short", old, "short", "short", "at least 12"},
		{"repeated wrong", old, next, next + "!", "differ"},
	} {
		status, answer := b.post("/account/password", url.Values{"csrf": {tok}, "current": {tc.current}, "password": {tc.password}, "confirm": {tc.again}})
		if status != http.StatusBadRequest || !strings.Contains(answer, tc.says) || !strings.Contains(answer, `action="/portal/account/password"`) {
			t.Fatalf("%s: %d, the page does not say %q on the form", tc.name, status, tc.says)
		}
	}
	if status, _ := b.post("/account/password", url.Values{"csrf": {tok}, "current": {old}, "password": {next}, "confirm": {next}}); status != http.StatusSeeOther {
		t.Fatalf("change the password: %d", status)
	}
	if status, home, _ := b.get("/account?notice=password"); status != http.StatusOK || !strings.Contains(home, "password was changed") {
		t.Fatalf("this browser after the change: %d", status)
	}
	if status, _, _ := elsewhere.get("/"); status != http.StatusSeeOther {
		t.Fatalf("another session after the change: %d, want a redirect to sign in", status)
	}
	if status, _ := portalClient(t, ts).signIn("w@lab.example", old); status != http.StatusUnauthorized {
		t.Fatalf("the old password after the change: %d", status)
	}
	if status, _ := portalClient(t, ts).signIn("w@lab.example", next); status != http.StatusSeeOther {
		t.Fatalf("the new password: %d", status)
	}
}

// With a second factor, the password alone gives no session; the TOTP
// code does. Signing out ends the session on every node (its epoch).
func TestPortalSecondFactorAndSignOut(t *testing.T) {
	ts := verifyServer(t)
	key := totpWorker(t, ts, "w@lab.example", "issue", "codes")
	b := portalClient(t, ts)
	_, page := b.signIn("w@lab.example", "correct horse battery staple")
	if !strings.Contains(page, "authenticator") {
		t.Fatal("no second factor asked")
	}
	if status, _, _ := b.get("/"); status != http.StatusSeeOther {
		t.Fatal("a session before the second factor")
	}
	if status, _ := b.post("/totp", url.Values{"csrf": {formToken(t, page)}, "code": {"000000"}}); status != http.StatusUnauthorized {
		t.Fatalf("a wrong TOTP code: %d", status)
	}
	code, _ := totp.GenerateCode(key.Secret(), time.Now())
	if status, _ := b.post("/totp", url.Values{"csrf": {formToken(t, page)}, "code": {code}}); status != http.StatusSeeOther {
		t.Fatalf("the TOTP code: %d", status)
	}
	status, home, _ := b.get("/")
	if status != http.StatusOK || !strings.Contains(home, "Create verification code") {
		t.Fatalf("home after sign-in: %d", status)
	}
	if status, _ := b.post("/issue", url.Values{"testType": {"confirmed"}}); status != http.StatusForbidden {
		t.Fatalf("a form without its CSRF token: %d", status)
	}
	if status, _ := b.post("/issue", url.Values{"csrf": {formToken(t, home)}, "testType": {"confirmed"}}); status != http.StatusSeeOther {
		t.Fatalf("issue: %d", status)
	}
	if status, _, _ := b.get("/bulk"); status != http.StatusForbidden {
		t.Fatalf("bulk without the bulk role: %d", status)
	}
	stolen := b.c.Jar.Cookies(mustURL(t, b.base+"/"))
	b.post("/logout", url.Values{"csrf": {formToken(t, home)}})
	thief := portalClient(t, ts)
	thief.c.Jar.SetCookies(mustURL(t, thief.base+"/"), stolen)
	if status, _, _ := thief.get("/"); status != http.StatusSeeOther {
		t.Fatalf("a session cookie kept after sign-out: %d", status)
	}
	if ev := auditOf(ts, "lab", 10); len(ev) < 3 || ev[0].GetAction() != "sign out" {
		t.Fatalf("audit log %v", ev)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A provider's account manager adds accounts of the provider (never an
// operator) and makes admin API keys that issue for the provider.
func TestPortalProviderAdmin(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "boss@lab.example", nil, "users", "apikeys", "codes")
	b := portalClient(t, ts)
	if status, _ := b.signIn("boss@lab.example", "correct horse battery staple"); status != http.StatusSeeOther {
		t.Fatalf("sign in: %d", status)
	}
	_, page, _ := b.get("/users")
	tok := formToken(t, page)
	// Nobody grants a role it does not hold (the reference's
	// GHSA-5v95-v8c8-3rh6), and no account is without a role; a refusal
	// is shown on the form as it was filled in.
	for _, tc := range []struct {
		name  string
		roles []string
		want  int
	}{
		{"a role it does not hold", []string{"issue", "codes"}, http.StatusForbidden},
		{"bulk issue, not held", []string{"bulk"}, http.StatusForbidden},
		{"the operator role", []string{"operator"}, http.StatusForbidden},
		{"no role", nil, http.StatusBadRequest},
		{"roles it holds", []string{"codes", "apikeys"}, http.StatusSeeOther},
	} {
		email := strings.ReplaceAll(tc.name, " ", "-") + "@lab.example"
		status, answer := b.post("/users", url.Values{"csrf": {tok}, "email": {email}, "name": {"New"},
			"password": {"a long enough password"}, "roles": tc.roles})
		_, created := ts.node.FSM().User(email)
		if status != tc.want || created != (tc.want == http.StatusSeeOther) {
			t.Fatalf("%s: %d, account made %v", tc.name, status, created)
		}
		if tc.want != http.StatusSeeOther && (!strings.Contains(answer, `class="error"`) || !strings.Contains(answer, `value="`+email+`"`)) {
			t.Fatalf("%s: the refusal is not on the form as filled in:\n%s", tc.name, answer)
		}
	}
	_, page, _ = b.get("/apikeys")
	if status, _ := b.post("/apikeys", url.Values{"csrf": {formToken(t, page)}, "name": {"lab-lims"}}); status != http.StatusSeeOther {
		t.Fatalf("create a key: %d, want a redirect to the list", status)
	}
	newKey := regexp.MustCompile(`id="newkey">([^<]+)<`)
	var key []string
	for range 2 { // the list shows the new key, and again on a reload
		_, created, _ := b.get("/apikeys")
		again := newKey.FindStringSubmatch(created)
		if again == nil || key != nil && again[1] != key[1] {
			t.Fatalf("the list after creating a key shows %v, before %v", again, key)
		}
		key = again
	}
	if n := len(ts.node.FSM().APIKeys()); n != 4 { // the device key, two providers', the new one
		t.Fatalf("%d API keys after one made and two reloads", n)
	}
	if w := ts.api("/api/issue", key[1], map[string]any{"testType": "confirmed"}); w.Code != http.StatusOK {
		t.Fatalf("the new key on /api/issue: %d %s", w.Code, w.Body)
	}
	if status, _, _ := b.get("/region"); status != http.StatusForbidden {
		t.Fatalf("the console for a provider's manager: %d", status)
	}
}

// A manager acts on an account from its row without touching anything
// else of it: disable (the worker signs in no more), enable, unlock (every
// lock lifted); a change of name or roles needs no new password and keeps
// the old one; a manager cannot disable itself.
func TestPortalAccountActions(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "boss@lab.example", nil, "users", "issue")
	addWorker(t, ts, "w@lab.example", nil, "issue")
	const right = "correct horse battery staple"
	boss := portalClient(t, ts)
	boss.signIn("boss@lab.example", right)
	_, page, _ := boss.get("/users")
	tok := formToken(t, page)
	act := func(email, action string) int {
		status, _ := boss.post("/users/action", url.Values{"csrf": {tok}, "email": {email}, "action": {action}})
		return status
	}
	signIn := func() int {
		status, _ := portalClientFrom(t, ts, "127.0.3.1").signIn("w@lab.example", right)
		return status
	}
	if status := act("w@lab.example", "disable"); status != http.StatusSeeOther {
		t.Fatalf("disable: %d", status)
	}
	if _, list, _ := boss.get("/users"); !strings.Contains(list, ">disabled<") || signIn() != http.StatusUnauthorized {
		t.Fatal("a disabled account is not shown so, or signs in")
	}
	if status := act("w@lab.example", "enable"); status != http.StatusSeeOther || signIn() != http.StatusSeeOther {
		t.Fatalf("enable: %d", status)
	}
	stranger := portalClientFrom(t, ts, "127.0.3.1")
	for range 5 {
		stranger.signIn("w@lab.example", "wrong")
	}
	if _, list, _ := boss.get("/users"); !strings.Contains(list, `value="unlock"`) || signIn() != http.StatusUnauthorized {
		t.Fatal("a locked-out address is not shown with an Unlock, or signs in")
	}
	if status := act("w@lab.example", "unlock"); status != http.StatusSeeOther || signIn() != http.StatusSeeOther {
		t.Fatalf("unlock: %d", status)
	}
	before, _ := ts.node.FSM().User("w@lab.example")
	status, _ := boss.post("/users", url.Values{"csrf": {tok}, "email": {"w@lab.example"}, "name": {"Wanda"}, "roles": {"issue"}})
	if after, _ := ts.node.FSM().User("w@lab.example"); status != http.StatusSeeOther || after.GetName() != "Wanda" || after.GetPasswordHash() != before.GetPasswordHash() {
		t.Fatalf("a change without a password: %d, name %q, password kept %v", status, after.GetName(), after.GetPasswordHash() == before.GetPasswordHash())
	}
	if status := act("boss@lab.example", "disable"); status != http.StatusBadRequest {
		t.Fatalf("a manager disabling itself: %d", status)
	}
	if status := act("nobody@lab.example", "disable"); status != http.StatusNotFound {
		t.Fatalf("an account that is not there: %d", status)
	}
}

// A worker sets up a second factor in the browser: a QR code (a PNG the
// page carries) and the key as text; a wrong code keeps it off, the right
// one turns it on, sealed in the state; from then on a sign-in asks for a
// code. A manager resets it (a lost phone) from the list.
func TestPortalSecondFactorSetUp(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "w@lab.example", nil, "issue")
	addWorker(t, ts, "boss@lab.example", nil, "users", "issue")
	const right = "correct horse battery staple"
	b := portalClient(t, ts)
	b.signIn("w@lab.example", right)
	_, page, _ := b.get("/account")
	if status, _ := b.post("/account/totp", url.Values{"csrf": {formToken(t, page)}}); status != http.StatusSeeOther {
		t.Fatalf("start: %d", status)
	}
	status, enrol, _ := b.get("/account/totp")
	qr := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(enrol)
	secret := regexp.MustCompile(`id="secret" class="secret">([A-Z2-7]+)<`).FindStringSubmatch(enrol)
	if status != http.StatusOK || qr == nil || secret == nil {
		t.Fatalf("the set-up page: %d, QR %v, key %v", status, qr != nil, secret != nil)
	}
	img, err := base64.StdEncoding.DecodeString(html.UnescapeString(qr[1])) // as a browser reads the attribute
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Fatalf("the QR code is not a PNG: %v", err)
	}
	tok := formToken(t, enrol)
	if status, answer := b.post("/account/totp/confirm", url.Values{"csrf": {tok}, "code": {"000000"}}); status != http.StatusBadRequest || !strings.Contains(answer, `id="qr"`) {
		t.Fatalf("a wrong code: %d, the page to try again shown %v", status, strings.Contains(answer, `id="qr"`))
	}
	if u, _ := ts.node.FSM().User("w@lab.example"); len(u.GetTotpSecret()) != 0 {
		t.Fatal("a wrong code turned the second factor on")
	}
	code, _ := totp.GenerateCode(secret[1], time.Now())
	if status, _ := b.post("/account/totp/confirm", url.Values{"csrf": {tok}, "code": {code}}); status != http.StatusSeeOther {
		t.Fatalf("the right code: %d", status)
	}
	if u, _ := ts.node.FSM().User("w@lab.example"); !account.TOTPSealed(u.GetTotpSecret()) {
		t.Fatalf("the second factor is not sealed in the state: %q", u.GetTotpSecret())
	}
	if _, page := portalClient(t, ts).signIn("w@lab.example", right); !strings.Contains(page, "authenticator") {
		t.Fatal("a sign-in after the set-up asks for no code")
	}
	boss := portalClient(t, ts)
	boss.signIn("boss@lab.example", right)
	_, list, _ := boss.get("/users")
	if status, _ := boss.post("/users/action", url.Values{"csrf": {formToken(t, list)}, "email": {"w@lab.example"}, "action": {"reset-totp"}}); status != http.StatusSeeOther {
		t.Fatalf("reset: %d", status)
	}
	if status, _ := portalClient(t, ts).signIn("w@lab.example", right); status != http.StatusSeeOther {
		t.Fatalf("a sign-in after the reset: %d", status)
	}
}

// Expiring a code asks first, on a page of its own (no script): the first
// POST writes nothing, the confirmed one expires the code.
func TestPortalExpireAsksFirst(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "w@lab.example", nil, "issue", "codes")
	issued := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed"})
	b := portalClient(t, ts)
	b.signIn("w@lab.example", "correct horse battery staple")
	_, page, _ := b.get("/codes")
	form := url.Values{"csrf": {formToken(t, page)}, "uuid": {issued.UUID}}
	status, ask := b.post("/codes/expire", form)
	if stored, _ := ts.node.FSM().VerificationCode(issued.UUID); status != http.StatusOK || !strings.Contains(ask, `id="confirm"`) || stored.GetExpiredByUnix() != 0 {
		t.Fatalf("expire, unconfirmed: %d, asked %v, expired %v", status, strings.Contains(ask, `id="confirm"`), stored.GetExpiredByUnix() != 0)
	}
	form.Set("confirmed", "yes")
	if status, _ := b.post("/codes/expire", form); status != http.StatusSeeOther {
		t.Fatalf("expire, confirmed: %d", status)
	}
	if stored, _ := ts.node.FSM().VerificationCode(issued.UUID); stored.GetExpiredByUnix() == 0 {
		t.Fatal("the confirmed expiry did not expire the code")
	}
}

// A submission is rolled back once: the list marks it with the
// revocation's time and reason instead of the form, and a second roll-back
// is refused (409) and appends no revocation.
func TestPortalRollBackOnce(t *testing.T) {
	ts := verifyServer(t)
	addOperator(t, ts)
	issued := issueCode(t, ts, labKey, verify.IssueRequest{TestType: "confirmed"})
	req, _, err := publish.RandomKeys("any.app", 14, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req.VerificationPayload = issued.Code
	if w := ts.do(http.MethodPost, "/v1/publish", req, jsonCT); w.Code != http.StatusOK {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	sub := ts.node.FSM().Submissions()[0]
	ops := operatorPortal(t, ts)
	_, page, _ := ops.get("/revocations")
	form := url.Values{"csrf": {formToken(t, page)}, "submission": {hex.EncodeToString(sub.ID[:])}, "reason": {"wrong patient"}, "confirmed": {"yes"}}
	if status, _ := ops.post("/revocations", form); status != http.StatusSeeOther {
		t.Fatalf("roll back: %d", status)
	}
	if _, list, _ := ops.get("/revocations"); !strings.Contains(list, "rolled back") || !strings.Contains(list, "wrong patient") {
		t.Fatal("the rolled-back submission is not marked")
	}
	if status, answer := ops.post("/revocations", form); status != http.StatusConflict || !strings.Contains(answer, "was rolled back") {
		t.Fatalf("a second roll-back: %d", status)
	}
	if n := len(ts.node.FSM().Revocations()); n != 1 {
		t.Fatalf("%d revocations after one roll-back and a refused one", n)
	}
}

// The code's page says what the code was issued for: the test type and
// dates chosen, and the number the SMS went to (in international format)
// with how long its code works.
func TestPortalCodePageEchoesTheIssue(t *testing.T) {
	g := newFakeGateway(t)
	ts := verifyServerWith(t, sms.NewWebhook(g.srv.URL, ""))
	addWorker(t, ts, "w@lab.example", nil, "issue")
	b := portalClient(t, ts)
	b.signIn("w@lab.example", "correct horse battery staple")
	_, home, _ := b.get("/")
	today := time.Now().UTC().Format(time.DateOnly)
	if status, _ := b.post("/issue", url.Values{"csrf": {formToken(t, home)}, "testType": {"likely"}, "testDate": {today},
		"phone": {"+1 (202) 555-0143"}}); status != http.StatusSeeOther {
		t.Fatalf("issue: %d", status)
	}
	_, page, _ := b.get("/issued")
	page = html.UnescapeString(page) // as a browser shows it
	for _, want := range []string{`id="sent-to">+12025550143<`, "works for 24 hours", "<dd>likely</dd>", "<dd>" + today + "</dd>", "not given"} {
		if !strings.Contains(page, want) {
			t.Errorf("the code's page does not say %q", want)
		}
	}
}

// Issuing on the portal answers with a redirect to the code's page: a
// reload shows the same code and issues none; another account's browser
// (or none) is shown no code.
func TestPortalIssueReloadIssuesNothing(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "w@lab.example", nil, "issue", "codes")
	b := portalClient(t, ts)
	if status, _ := b.signIn("w@lab.example", "correct horse battery staple"); status != http.StatusSeeOther {
		t.Fatalf("sign in: %d", status)
	}
	_, page, _ := b.get("/")
	if status, _ := b.post("/issue", url.Values{"csrf": {formToken(t, page)}, "testType": {"confirmed"}}); status != http.StatusSeeOther {
		t.Fatalf("issue: %d, want a redirect", status)
	}
	code := regexp.MustCompile(`id="code"[^>]*>([0-9]{8})<`)
	var first string
	for range 3 {
		status, shown, _ := b.get("/issued")
		m := code.FindStringSubmatch(shown)
		if status != http.StatusOK || m == nil || first != "" && m[1] != first {
			t.Fatalf("the code's page: %d %v, first %q", status, m, first)
		}
		first = m[1]
	}
	if n := len(ts.node.FSM().VerificationCodes("lab", 10)); n != 1 {
		t.Fatalf("%d codes after one issue and three views", n)
	}
	other := portalClient(t, ts)
	addWorker(t, ts, "x@lab.example", nil, "issue")
	other.signIn("x@lab.example", "correct horse battery staple")
	if status, shown, _ := other.get("/issued"); status != http.StatusNotFound || strings.Contains(shown, first) {
		t.Fatalf("another account's page of codes: %d", status)
	}
}

// A manager saving a worker's account (a new password, say) keeps its
// second factor: the password alone still signs in to nothing.
func TestPortalSavingAnAccountKeepsItsSecondFactor(t *testing.T) {
	ts := verifyServer(t)
	key := totpWorker(t, ts, "w@lab.example", "issue")
	addWorker(t, ts, "boss@lab.example", nil, "users", "issue")
	boss := portalClient(t, ts)
	boss.signIn("boss@lab.example", "correct horse battery staple")
	_, page, _ := boss.get("/users")
	form := url.Values{"csrf": {formToken(t, page)}, "email": {"w@lab.example"}, "name": {"Wanda"},
		"password": {"a new long password"}, "roles": {"issue"}}
	if status, _ := boss.post("/users", form); status != http.StatusSeeOther {
		t.Fatalf("save the account: %d", status)
	}
	if u, _ := ts.node.FSM().User("w@lab.example"); string(u.GetTotpSecret()) != key.Secret() || u.GetName() != "Wanda" {
		t.Fatalf("the saved account: name %q, second factor kept %v", u.GetName(), string(u.GetTotpSecret()) == key.Secret())
	}
	worker := portalClient(t, ts)
	if _, page := worker.signIn("w@lab.example", "a new long password"); !strings.Contains(page, "authenticator") {
		t.Fatal("the new password alone signed in: no second factor asked")
	}
	if status, _, _ := worker.get("/"); status != http.StatusSeeOther {
		t.Fatal("a session from the password alone")
	}
}
