package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/efgs/efgstest"
)

// An operator adds a country of the stand-in gateway in the console: the
// page lists it by its certificates' thumbprints; a certificate that is
// not PEM, a missing anchor signature or a country name that is not two
// capital letters is refused in plain words, and nothing is saved.
func TestPortalHubCountries(t *testing.T) {
	ts := verifyServer(t)
	addOperator(t, ts)
	certPEM := func(name string) string {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		cert, err := efgstest.Certificate(key, "DE", name, false)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	auth, sign := certPEM("auth DE"), certPEM("sign DE")
	ops := operatorPortal(t, ts)
	_, page, _ := ops.get("/hub")
	if !strings.Contains(page, "No countries yet.") {
		t.Fatal("the empty list")
	}
	good := url.Values{"csrf": {formToken(t, page)}, "country": {"de"}, "auth": {auth}, "signing": {sign}, "anchor_signature": {"c2lnbmF0dXJl"}}
	for _, tc := range []struct {
		name, field, value, says string
	}{
		{"auth not PEM", "auth", "not a certificate", "The authentication certificate is not a certificate in PEM."},
		{"signing not PEM", "signing", "", "The signing certificate is not a certificate in PEM."},
		{"no anchor signature", "anchor_signature", " ", "Give the trust anchor's signature of the signing certificate."},
		{"a country of three letters", "country", "DEU", "A country is named by its two capital letters"},
	} {
		form := url.Values{}
		for k, v := range good {
			form[k] = v
		}
		form.Set(tc.field, tc.value)
		status, answer := ops.post("/hub", form)
		if status != http.StatusBadRequest || !strings.Contains(html.UnescapeString(answer), tc.says) {
			t.Fatalf("%s: %d, says %q", tc.name, status, tc.says)
		}
	}
	if n := len(ts.node.FSM().HubCountries()); n != 0 {
		t.Fatalf("%d countries after refusals", n)
	}
	if status, _ := ops.post("/hub", good); status != http.StatusSeeOther {
		t.Fatalf("save: %d", status)
	}
	countries := ts.node.FSM().HubCountries()
	if len(countries) != 1 || countries[0].GetCountry() != "DE" || len(countries[0].GetSigners()) != 1 {
		t.Fatalf("countries %v", countries)
	}
	_, page, _ = ops.get("/hub?notice=hub-saved")
	if tp := countries[0].GetAuthThumbprints()[0]; !strings.Contains(page, tp[:16]) || !strings.Contains(page, "The country was saved") {
		t.Fatal("the saved country is not listed")
	}
	events := auditOf(ts, "", 10)
	if len(events) == 0 || events[0].GetAction() != "hub country" || events[0].GetTarget() != "DE" {
		t.Fatalf("audit %v", events)
	}
}
