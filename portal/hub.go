package portal

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// hubRow is a country of the stand-in gateway as the console lists it:
// its certificates by the start of their thumbprints.
type hubRow struct {
	Country       string
	Auth, Signing []string
	Callbacks     []string
}

// hubForm is what an operator sends to add or replace a country.
type hubForm struct {
	Country, AuthPEM, SignPEM, AnchorSignature string
}

// hubPage lists the countries of the stand-in EU gateway this region
// serves (--hub-addr) and has the form that adds or replaces one.
func (p *Portal) hubPage(c *gin.Context) {
	p.showHub(c, http.StatusOK, "", hubForm{})
}

func (p *Portal) showHub(c *gin.Context, status int, refusal string, form hubForm) {
	short := func(tp string) string { return tp[:min(16, len(tp))] }
	var rows []hubRow
	for _, hc := range p.region.FSM().HubCountries() {
		row := hubRow{Country: hc.GetCountry()}
		for _, tp := range hc.GetAuthThumbprints() {
			row.Auth = append(row.Auth, short(tp))
		}
		for _, sg := range hc.GetSigners() {
			row.Signing = append(row.Signing, short(sg.GetThumbprint()))
		}
		for _, cb := range hc.GetCallbacks() {
			row.Callbacks = append(row.Callbacks, cb.GetUrl())
		}
		rows = append(rows, row)
	}
	p.render(c, status, "hub.html", page{Title: msg("Gateway countries"), Error: refusal, Notice: notices[c.Query("notice")],
		Data: struct {
			Countries []hubRow
			Form      hubForm
		}{rows, form}})
}

// saveHubCountry adds or replaces a country: its authentication and
// signing certificates, and the trust anchor's signature of the signing
// certificate, made where the anchor's key is kept (never on a node).
func (p *Portal) saveHubCountry(c *gin.Context) {
	form := hubForm{Country: strings.ToUpper(strings.TrimSpace(c.PostForm("country"))), AuthPEM: c.PostForm("auth"),
		SignPEM: c.PostForm("signing"), AnchorSignature: strings.TrimSpace(c.PostForm("anchor_signature"))}
	auth, err := pemCertificate(form.AuthPEM)
	if err != nil {
		p.showHub(c, http.StatusBadRequest, msg("The authentication certificate is not a certificate in PEM."), form)
		return
	}
	sign, err := pemCertificate(form.SignPEM)
	if err != nil {
		p.showHub(c, http.StatusBadRequest, msg("The signing certificate is not a certificate in PEM."), form)
		return
	}
	if form.AnchorSignature == "" {
		p.showHub(c, http.StatusBadRequest, msg("Give the trust anchor's signature of the signing certificate."), form)
		return
	}
	err = command.PutHubCountry(c.Request.Context(), p.region, &fsmpb.HubCountry{Country: form.Country,
		AuthThumbprints: []string{efgs.Thumbprint(auth)},
		Signers:         []*fsmpb.HubSigner{{Thumbprint: efgs.Thumbprint(sign), Pem: form.SignPEM, AnchorSignature: form.AnchorSignature}}})
	var refused *command.Error
	switch {
	case errors.As(err, &refused):
		p.showHub(c, http.StatusBadRequest, msg("A country is named by its two capital letters, and a certificate belongs to one country only."), form)
		return
	case err != nil:
		p.showHub(c, http.StatusServiceUnavailable, msg("The region could not save it now; try again in a moment."), form)
		return
	}
	p.audit(c, "hub country", form.Country)
	p.redirectAfterWrite(c, "/portal/hub?notice=hub-saved")
}

// pemCertificate reads the first certificate of a PEM text.
func pemCertificate(text string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(text)))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
