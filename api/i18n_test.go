package api

import (
	"html"
	"net/http"
	"strings"
	"testing"
)

// acceptLanguage sends every request of the client with this
// Accept-Language, as a browser set to that language does.
type acceptLanguage struct {
	lang string
	next http.RoundTripper
}

func (a acceptLanguage) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", a.lang)
	return a.next.RoundTrip(r)
}

// A browser set to Dutch gets the portal in Dutch (pages, refusals,
// numbers and the language of the page), and the switch gives English,
// which stays chosen; one set to German gets English.
func TestPortalInDutch(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "w@lab.example", nil, "issue")
	b := portalClient(t, ts)
	b.c.Transport = acceptLanguage{"nl-NL,nl;q=0.9,en;q=0.5", b.c.Transport}
	_, login, _ := b.get("/login")
	if !strings.Contains(login, `<html lang="nl">`) || !strings.Contains(login, ">Aanmelden</button>") {
		t.Fatalf("the sign-in page for a Dutch browser:\n%s", login)
	}
	if _, refused := b.signIn("w@lab.example", "wrong password"); !strings.Contains(html.UnescapeString(refused), "Verkeerd e-mailadres of wachtwoord") {
		t.Fatalf("a refused sign-in in Dutch:\n%s", refused)
	}
	b.signIn("w@lab.example", "correct horse battery staple")
	_, home, _ := b.get("/")
	home = html.UnescapeString(home)
	for _, want := range []string{"Verificatiecode maken", "Je zorgaanbieder heeft de afgelopen 24 uur 0 van hoogstens 5.000 codes uitgegeven.", ">bevestigd</label>", `lang="en" id="lang-switch">English<`} {
		if !strings.Contains(home, want) {
			t.Errorf("the Dutch issue page lacks %q", want)
		}
	}
	if _, english, _ := b.get("/?lang=en"); !strings.Contains(english, "Create verification code") || !strings.Contains(english, "5,000 codes") {
		t.Error("the switch to English did not give English")
	}
	if _, again, _ := b.get("/"); !strings.Contains(again, `<html lang="en">`) {
		t.Error("English, once chosen, is not kept")
	}
	other := portalClientFrom(t, ts, "127.0.0.2")
	other.c.Transport = acceptLanguage{"de-DE,de;q=0.9", other.c.Transport}
	if _, page, _ := other.get("/login"); !strings.Contains(page, `<html lang="en">`) {
		t.Error("a German browser does not get English")
	}
}
