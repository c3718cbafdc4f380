// Package membertls holds the member credential of a region: a region CA,
// node certificates signed by it, and the mutual-TLS configurations with
// which members speak raft, so that only holders of a certificate from the
// region's CA can speak to a member port.
package membertls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Algorithm names the key type of a CA or node certificate.
type Algorithm string

// Key types: Ed25519 (small, fast, TLS 1.3) or ECDSA P-256 (for tools and
// hardware that lack Ed25519).
const (
	Ed25519 Algorithm = "ed25519"
	P256    Algorithm = "p256"
)

// Lifetimes a CA and a node certificate get unless told otherwise.
const (
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour
	DefaultNodeLifetime = 825 * 24 * time.Hour
)

// PEM is a certificate and its private key, PEM encoded.
type PEM struct {
	Cert, Key []byte
}

// NewCA makes a self-signed region CA that may sign node certificates only.
func NewCA(region string, alg Algorithm, lifetime time.Duration, now time.Time) (PEM, error) {
	key, err := newKey(alg)
	if err != nil {
		return PEM{}, err
	}
	tmpl, err := template(now, lifetime)
	if err != nil {
		return PEM{}, err
	}
	tmpl.Subject = pkix.Name{CommonName: "covid-backend region " + region + " CA", OrganizationalUnit: []string{region}}
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return PEM{}, fmt.Errorf("make CA certificate: %w", err)
	}
	return encode(der, key)
}

// NodeRequest says whom a node certificate names: the node id (its common
// name) and the IPs and DNS names peers reach it by.
type NodeRequest struct {
	ID       string
	IPs      []net.IP
	DNSNames []string
	Alg      Algorithm
	Lifetime time.Duration
}

// NewNode makes a node certificate signed by the CA, good for both ends of
// a mutual-TLS connection.
func NewNode(ca PEM, req NodeRequest, now time.Time) (PEM, error) {
	if req.ID == "" || len(req.IPs)+len(req.DNSNames) == 0 {
		return PEM{}, errors.New("a node certificate needs the node id and at least one IP or DNS name")
	}
	caCert, caKey, err := ca.parse()
	if err != nil {
		return PEM{}, fmt.Errorf("CA: %w", err)
	}
	key, err := newKey(req.Alg)
	if err != nil {
		return PEM{}, err
	}
	lifetime := req.Lifetime
	if lifetime == 0 {
		lifetime = DefaultNodeLifetime
	}
	tmpl, err := template(now, lifetime)
	if err != nil {
		return PEM{}, err
	}
	tmpl.Subject = pkix.Name{CommonName: req.ID, OrganizationalUnit: caCert.Subject.OrganizationalUnit}
	tmpl.IPAddresses, tmpl.DNSNames = req.IPs, req.DNSNames
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if tmpl.NotAfter.After(caCert.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return PEM{}, fmt.Errorf("make node certificate: %w", err)
	}
	return encode(der, key)
}

func newKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case Ed25519, "":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case P256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("key algorithm %q: want ed25519 or p256", alg)
}

func template(now time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(lifetime)}, nil
}

func encode(der []byte, key crypto.Signer) (PEM, error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return PEM{}, err
	}
	return PEM{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}),
	}, nil
}

func (p PEM) parse() (*x509.Certificate, crypto.Signer, error) {
	cb, _ := pem.Decode(p.Cert)
	kb, _ := pem.Decode(p.Key)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not a PEM certificate and key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the key cannot sign")
	}
	return cert, signer, nil
}
