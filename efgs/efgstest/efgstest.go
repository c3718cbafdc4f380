// Package efgstest is an EU gateway in memory, for tests of the countries
// that speak to it (as net/http/httptest is for HTTP clients): countries
// with signing certificates that a trust anchor signed, uploads checked as
// the gateway checks them (efgs.CheckUpload), each stored upload a
// download batch of its own (tagged yyyyMMdd-N, chained across days), the
// audit of each, and a country's own keys left out of what it downloads.
// The caller's country is its TLS client certificate's. It replicates
// nothing and is not the stand-in hub that covid-node serves.
package efgstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// Gateway is the gateway's state and its HTTP API under /efgs.
type Gateway struct {
	// Anchor is the trust anchor every country checks signing
	// certificates against.
	Anchor    *x509.Certificate
	anchorKey crypto.Signer
	now       func() time.Time

	mu        sync.Mutex
	countries map[string]signer // by thumbprint of the signing certificate
	tags      map[string]bool   // upload tags stored
	batches   []batch           // in order
}

type signer struct {
	country, pem, anchorSig string
}

type batch struct {
	tag, country, signature, thumbprint string
	day, uploaded                       time.Time
	keys                                []*efgspb.DiagnosisKey
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
	return &Gateway{Anchor: anchor, anchorKey: key, now: now, countries: map[string]signer{}, tags: map[string]bool{}}, nil
}

// Certificate is a self-signed certificate of key for country (none for
// ""), valid for a year from an hour ago: what a country's signing or
// authentication certificate is in a test.
func Certificate(key crypto.Signer, country, name string, ca bool) (*x509.Certificate, error) {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
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

// AddCountry registers a signing certificate of country, signed by the
// trust anchor as the gateway's operators sign them.
func (g *Gateway) AddCountry(country string, cert *x509.Certificate) error {
	pemText := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	sig, err := efgs.AnchorSign(g.anchorKey, pemText)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.countries[efgs.Thumbprint(cert)] = signer{country: country, pem: string(pemText), anchorSig: sig}
	return nil
}

// Uploads returns how many uploads the gateway stored.
func (g *Gateway) Uploads() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.batches)
}

// NewServer serves the gateway over TLS, asking every client for its
// certificate (the country's authentication certificate), as the gateway
// does; the caller closes it.
func NewServer(g *Gateway) *httptest.Server {
	srv := httptest.NewUnstartedServer(g)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	return srv
}

// Keys returns how many keys of country the gateway stored in all, and
// how many distinct ones: a key uploaded twice counts once in distinct.
func (g *Gateway) Keys(country string) (total, distinct int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[string]bool{}
	for _, b := range g.batches {
		if b.country != country {
			continue
		}
		for _, k := range b.keys {
			total++
			seen[string(k.GetKeyData())] = true
		}
	}
	return total, len(seen)
}

// ServeHTTP answers the gateway's upload, download and audit.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || len(r.TLS.PeerCertificates[0].Subject.Country) != 1 {
		answer(w, http.StatusForbidden, "no client certificate of a country")
		return
	}
	country := r.TLS.PeerCertificates[0].Subject.Country[0]
	g.mu.Lock()
	defer g.mu.Unlock()
	switch path := strings.TrimPrefix(r.URL.Path, "/efgs/diagnosiskeys/"); {
	case r.Method == http.MethodPost && path == "upload":
		g.upload(w, r, country)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "download/"):
		g.download(w, r, country, strings.TrimPrefix(path, "download/"))
	case r.Method == http.MethodGet && strings.HasPrefix(path, "audit/download/"):
		g.audit(w, strings.TrimPrefix(path, "audit/download/"))
	default:
		answer(w, http.StatusNotFound, "no such route")
	}
}

func (g *Gateway) upload(w http.ResponseWriter, r *http.Request, country string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	up, ref := efgs.CheckUpload(country, r.Header.Get("Content-Type"), r.Header.Get("batchTag"), r.Header.Get("batchSignature"), body,
		func(thumbprint string) (string, bool) { s, ok := g.countries[thumbprint]; return s.country, ok }, g.now())
	switch {
	case ref != nil:
		answer(w, ref.Status, ref.Message)
		return
	case g.tags[up.Tag]:
		answer(w, http.StatusConflict, "batchTag already used")
		return
	}
	now := g.now().UTC()
	day := now.Truncate(24 * time.Hour)
	n := 1
	for _, b := range g.batches {
		if b.day.Equal(day) {
			n++
		}
	}
	g.tags[up.Tag] = true
	g.batches = append(g.batches, batch{tag: fmt.Sprintf("%s-%d", day.Format("20060102"), n), country: country,
		signature: r.Header.Get("batchSignature"), thumbprint: up.Signer, day: day, uploaded: now, keys: up.Keys})
	w.WriteHeader(http.StatusCreated)
}

// find is the index of a batch of a day by tag ("": the day's first), or
// -1.
func (g *Gateway) find(date, tag string) int {
	for i, b := range g.batches {
		if b.day.Format(time.DateOnly) == date && (tag == "" || b.tag == tag) {
			return i
		}
	}
	return -1
}

func (g *Gateway) download(w http.ResponseWriter, r *http.Request, country, date string) {
	i := g.find(date, r.Header.Get("batchTag"))
	if i < 0 {
		answer(w, http.StatusNotFound, "no batch")
		return
	}
	var keys []*efgspb.DiagnosisKey
	if b := g.batches[i]; b.country != country {
		keys = b.keys
	}
	body, _ := proto.Marshal(&efgspb.DiagnosisKeyBatch{Keys: keys})
	next := "null"
	if i+1 < len(g.batches) {
		next = g.batches[i+1].tag
	}
	w.Header().Set("Content-Type", efgs.ContentType)
	w.Header().Set("batchTag", g.batches[i].tag)
	w.Header().Set("nextBatchTag", next)
	w.Write(body)
}

func (g *Gateway) audit(w http.ResponseWriter, rest string) {
	date, tag, _ := strings.Cut(rest, "/")
	i := g.find(date, tag)
	if i < 0 || tag == "" {
		answer(w, http.StatusNotFound, "no batch")
		return
	}
	b := g.batches[i]
	s := g.countries[b.thumbprint]
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode([]efgs.AuditEntry{{Country: b.country, UploadedTime: b.uploaded.Format(time.RFC3339),
		SigningCertificate: s.pem, UploaderSigningThumbprint: b.thumbprint, SigningCertificateOperatorSignature: s.anchorSig,
		Amount: len(b.keys), BatchSignature: b.signature}})
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
