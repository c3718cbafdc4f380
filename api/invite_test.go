package api

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var inviteLinkRE = regexp.MustCompile(`id="invite-link" class="secret">([^<]+)<`)

// inviteFor has a manager invite a new account (no password given) and
// returns the link shown once on the accounts page.
func inviteFor(t *testing.T, boss *browserish, email string) string {
	t.Helper()
	_, page, _ := boss.get("/users")
	if status, _ := boss.post("/users", url.Values{"csrf": {formToken(t, page)}, "email": {email}, "name": {"New"}, "roles": {"issue"}}); status != http.StatusSeeOther {
		t.Fatalf("invite %s: %d", email, status)
	}
	_, page, _ = boss.get("/users")
	m := inviteLinkRE.FindStringSubmatch(html.UnescapeString(page))
	if m == nil || !strings.Contains(page, "invited (the link works until") {
		t.Fatalf("the accounts page shows no invitation link for %s", email)
	}
	return m[1]
}

// acceptInvite opens the link's page and sets a password with the token
// of its fragment, as the page's script does.
func acceptInvite(t *testing.T, b *browserish, link, password string) (int, string) {
	t.Helper()
	_, page, _ := b.get("/invite")
	_, token, _ := strings.Cut(link, "#")
	return b.post("/invite", url.Values{"csrf": {formToken(t, page)}, "token": {token}, "password": {password}, "repeat": {password}})
}

// An account made without a password gets a single-use invitation link,
// whose token rides in the fragment (never sent to a server): it sets the
// worker's password once, who then signs in with it; the link works no
// second time, a new link replaces the old one, and a mistyped repeat or
// a short password are refused in plain words, changing nothing.
func TestPortalInvitation(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "boss@lab.example", nil, "users", "issue")
	boss := portalClient(t, ts)
	boss.signIn("boss@lab.example", "correct horse battery staple")
	link := inviteFor(t, boss, "new@lab.example")
	if !strings.Contains(link, "/portal/invite#") {
		t.Fatalf("the link %q does not carry its token in the fragment", link)
	}
	worker := portalClientFrom(t, ts, "127.0.0.2")
	if status, page := acceptInvite(t, worker, link, "short"); status != http.StatusBadRequest || !strings.Contains(page, "at least 12 characters") {
		t.Fatalf("a short password: %d", status)
	}
	_, page, _ := worker.get("/invite")
	_, token, _ := strings.Cut(link, "#")
	if status, answer := worker.post("/invite", url.Values{"csrf": {formToken(t, page)}, "token": {token}, "password": {"a long enough password"}, "repeat": {"a long enough passwort"}}); status != http.StatusBadRequest || !strings.Contains(answer, "differ") {
		t.Fatalf("a mistyped repeat: %d", status)
	}
	if status, _ := acceptInvite(t, worker, link, "a long enough password"); status != http.StatusSeeOther {
		t.Fatalf("set the password: %d", status)
	}
	if status, _ := worker.signIn("new@lab.example", "a long enough password"); status != http.StatusSeeOther {
		t.Fatalf("sign in with the chosen password: %d", status)
	}
	if status, page := acceptInvite(t, portalClientFrom(t, ts, "127.0.0.3"), link, "another long password"); status != http.StatusBadRequest || !strings.Contains(page, "used, replaced or expired") {
		t.Fatalf("the link a second time: %d", status)
	}

	// A new link for an account replaces the one before it.
	first := inviteFor(t, boss, "other@lab.example")
	_, page, _ = boss.get("/users")
	if status, _ := boss.post("/users/action", url.Values{"csrf": {formToken(t, page)}, "email": {"other@lab.example"}, "action": {"invite"}}); status != http.StatusSeeOther {
		t.Fatalf("a new link: %d", status)
	}
	_, page, _ = boss.get("/users")
	second := inviteLinkRE.FindStringSubmatch(html.UnescapeString(page))
	if second == nil || second[1] == first {
		t.Fatal("no new link shown")
	}
	if status, _ := acceptInvite(t, portalClientFrom(t, ts, "127.0.0.4"), first, "a long enough password"); status != http.StatusBadRequest {
		t.Fatalf("the replaced link: %d", status)
	}
	if status, _ := acceptInvite(t, portalClientFrom(t, ts, "127.0.0.5"), second[1], "a long enough password"); status != http.StatusSeeOther {
		t.Fatalf("the new link: %d", status)
	}
	// A manager without bulk may not take over an account that has it.
	addWorker(t, ts, "senior@lab.example", nil, "issue", "bulk")
	_, page, _ = boss.get("/users")
	if status, answer := boss.post("/users/action", url.Values{"csrf": {formToken(t, page)}, "email": {"senior@lab.example"}, "action": {"invite"}}); status != http.StatusForbidden || !strings.Contains(answer, "roles you hold yourself") {
		t.Fatalf("a new password link for an account of more roles: %d", status)
	}
	if n := len(auditOf(ts, "lab", 50)); n == 0 {
		t.Fatal("nothing audited")
	}
}
