// Package efgstest is an EU gateway for tests of the countries that speak
// to it (as net/http/httptest is for HTTP clients): the stand-in hub
// (efgshub) on a state machine of its own, without raft, whose trust
// anchor signs the countries' signing certificates. A caller is the
// country whose authentication certificate it shows.
package efgstest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgshub"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
)

// Gateway is a hub and its trust anchor.
type Gateway struct {
	// Anchor is the trust anchor every country checks signing
	// certificates against.
	Anchor    *x509.Certificate
	anchorKey crypto.Signer
	// HubKey verifies the hub's signature of every download batch.
	HubKey ed25519.PublicKey
	region *fsmtest.Region
	hub    *efgshub.Hub
}

// New is a gateway with a new trust anchor, on the clock now.
func New(now func() time.Time) (*Gateway, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	anchor, err := Certificate(key, "", "efgs trust anchor", true)
	if err != nil {
		return nil, err
	}
	hubPub, hubKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	region := fsmtest.New(now)
	return &Gateway{Anchor: anchor, anchorKey: key, HubKey: hubPub, region: region,
		hub: &efgshub.Hub{State: region.State, Applier: region, Now: now, Key: hubKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}, nil
}

// Certificate is a self-signed certificate of key for country (none for
// ""), valid for a year from an hour ago: what a country's signing or
// authentication certificate is in a test.
func Certificate(key crypto.Signer, country, name string, ca bool) (*x509.Certificate, error) {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IsCA: ca, BasicConstraintsValid: ca}
	if country != "" {
		tmpl.Subject.Country = []string{country}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// AddCountry registers a country by its authentication certificate and
// its signing certificate, which the trust anchor signs as the gateway's
// operators sign them.
func (g *Gateway) AddCountry(country string, auth, sign *x509.Certificate) error {
	pemText := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sign.Raw})
	sig, err := efgs.AnchorSign(g.anchorKey, pemText)
	if err != nil {
		return err
	}
	return command.PutHubCountry(context.Background(), g.region, &fsmpb.HubCountry{Country: country,
		AuthThumbprints: []string{efgs.Thumbprint(auth)},
		Signers:         []*fsmpb.HubSigner{{Thumbprint: efgs.Thumbprint(sign), Pem: string(pemText), AnchorSignature: sig}}})
}

// Keys returns how many keys of country the gateway stored in all, and
// how many distinct ones: a key uploaded twice counts once in distinct.
func (g *Gateway) Keys(country string) (total, distinct int) {
	seen := map[string]bool{}
	for _, b := range g.region.State.HubBatches() {
		if b.GetCountry() != country {
			continue
		}
		for _, k := range b.GetKeyData() {
			total++
			seen[string(k)] = true
		}
	}
	return total, len(seen)
}

// Uploads returns how many uploads the gateway stored.
func (g *Gateway) Uploads() int { return len(g.region.State.HubBatches()) }

// ServeHTTP answers the gateway's upload, download and audit.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.hub.ServeHTTP(w, r) }

// NewServer serves the gateway over TLS, asking every client for its
// certificate (the country's authentication certificate), as the gateway
// does; the caller closes it.
func NewServer(g *Gateway) *httptest.Server {
	srv := httptest.NewUnstartedServer(g)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	return srv
}
