package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgssync"
	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/outbound"
)

// efgsConfig is how a region reaches the EU gateway: its URL, the
// country's authentication certificate (mutual TLS) and signing
// certificate, and the gateway's trust anchor. Every node of the region
// has the same files; the leader runs the exchange.
type efgsConfig struct {
	URL, Country                 string
	AuthCert, AuthKey            string
	SignCert, SignKey            string
	TrustAnchor, CAFile, Visited string
	HubKeyFile, CallbackURL      string
	Interval                     time.Duration
	StartDays                    int
}

func (e *efgsConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&e.URL, "efgs-url", "", "the EU gateway (EFGS) up to its /diagnosiskeys paths (e.g. https://efgs.example/efgs): the leader uploads this region's keys there and imports the trusted countries' (trust add-efgs)")
	fs.StringVar(&e.Country, "efgs-country", "", "this region's country at the gateway (ISO 3166-1 alpha-2)")
	fs.StringVar(&e.AuthCert, "efgs-auth-cert", "", "the country's authentication certificate (PEM), shown to the gateway in mutual TLS")
	fs.StringVar(&e.AuthKey, "efgs-auth-key", "", "its private key (PEM, mode 0600)")
	fs.StringVar(&e.SignCert, "efgs-sign-cert", "", "the country's signing certificate (PEM), registered at the gateway, that signs its uploads")
	fs.StringVar(&e.SignKey, "efgs-sign-key", "", "its private key (PEM, mode 0600), or a P-256 key in the PKCS#11 token as pkcs11:object=LABEL (--pkcs11-*)")
	fs.StringVar(&e.TrustAnchor, "efgs-trust-anchor", "", "the gateway's trust anchor certificate (PEM): it signed every country's signing certificate")
	fs.StringVar(&e.CAFile, "efgs-ca-file", "", "CA certificates (PEM) to trust, besides the system's, for the gateway's HTTPS certificate")
	fs.StringVar(&e.Visited, "efgs-visited", "", "comma-separated countries this region's keys are uploaded as visited (default: its own country)")
	fs.StringVar(&e.HubKeyFile, "efgs-hub-key-file", "", "a stand-in hub's public key (PEM, its keygen's .pub.pem): every download batch must carry the hub's signature")
	fs.StringVar(&e.CallbackURL, "efgs-callback-url", "", "this region's public URL of /v1/efgs/callback, registered at the gateway, which calls it on each new download batch (the leader then downloads at once)")
	fs.DurationVar(&e.Interval, "efgs-interval", 5*time.Minute, "how often the leader uploads to and downloads from the gateway")
	fs.IntVar(&e.StartDays, "efgs-start-days", 1, "how many days before today the first download from the gateway begins (0 to 13)")
}

// sync builds the exchange from the files (the signing key may be in the
// PKCS#11 token, keys); nil when no gateway is configured.
func (e *efgsConfig) sync(logger *slog.Logger, keys *keyFiles) (*efgssync.Sync, error) {
	if e.URL == "" {
		return nil, nil
	}
	if e.StartDays < 0 || e.StartDays > 13 {
		return nil, errors.New("--efgs-start-days: 0 to 13 (the gateway keeps 14 days)")
	}
	if e.Country == "" || e.AuthCert == "" || e.AuthKey == "" || e.SignCert == "" || e.SignKey == "" || e.TrustAnchor == "" {
		return nil, errors.New("--efgs-url needs --efgs-country, --efgs-auth-cert, --efgs-auth-key, --efgs-sign-cert, --efgs-sign-key and --efgs-trust-anchor")
	}
	auth, err := tls.LoadX509KeyPair(e.AuthCert, e.AuthKey)
	if err != nil {
		return nil, fmt.Errorf("--efgs-auth-cert: %w", err)
	}
	signCert, signer, err := e.signingKey(keys)
	if err != nil {
		return nil, err
	}
	anchor, err := readCertificate(e.TrustAnchor)
	if err != nil {
		return nil, fmt.Errorf("--efgs-trust-anchor: %w", err)
	}
	var ca []byte
	if e.CAFile != "" {
		if ca, err = os.ReadFile(e.CAFile); err != nil {
			return nil, fmt.Errorf("--efgs-ca-file: %w", err)
		}
	}
	client, err := outbound.NewClient(ca, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("--efgs-ca-file: %w", err)
	}
	transport := client.Transport.(*http.Transport)
	if transport.TLSClientConfig == nil {
		transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	transport.TLSClientConfig.Certificates = []tls.Certificate{auth}
	var hubKey ed25519.PublicKey
	if e.HubKeyFile != "" {
		if hubKey, err = readEd25519Public(e.HubKeyFile); err != nil {
			return nil, fmt.Errorf("--efgs-hub-key-file: %w", err)
		}
	}
	visited := []string{e.Country}
	if e.Visited != "" {
		visited = splitList(e.Visited)
	}
	return &efgssync.Sync{Client: &efgs.Client{Base: strings.TrimRight(e.URL, "/"), HTTP: client, Country: e.Country, Cert: signCert, Key: signer, HubKey: hubKey},
		Anchor: anchor, Visited: visited, Start: e.StartDays, CallbackURL: e.CallbackURL, Logger: logger}, nil
}

func readEd25519Public(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	der, err := federation.PublicKeyDER(data)
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	return pub.(ed25519.PublicKey), nil // PublicKeyDER checked its type
}

// signingKey is the country's batch signing certificate and its key: a
// PEM file, or a P-256 key in the PKCS#11 token (pkcs11:object=LABEL),
// which must be the certificate's.
func (e *efgsConfig) signingKey(keys *keyFiles) (*x509.Certificate, crypto.Signer, error) {
	if !strings.HasPrefix(e.SignKey, pkcs11Prefix) {
		sign, err := tls.LoadX509KeyPair(e.SignCert, e.SignKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--efgs-sign-cert: %w", err)
		}
		cert, err := x509.ParseCertificate(sign.Certificate[0])
		if err != nil {
			return nil, nil, fmt.Errorf("--efgs-sign-cert: %w", err)
		}
		signer, ok := sign.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, nil, errors.New("--efgs-sign-key: not a signing key")
		}
		return cert, signer, nil
	}
	cert, err := readCertificate(e.SignCert)
	if err != nil {
		return nil, nil, fmt.Errorf("--efgs-sign-cert: %w", err)
	}
	signer, err := keys.load(e.SignKey)
	if err != nil {
		return nil, nil, fmt.Errorf("--efgs-sign-key: %w", err)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("--efgs-sign-key: the token's key is not the signing certificate's")
	}
	return cert, signer, nil
}

func readCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// efgsJob is a leader job that exchanges keys with the gateway every
// interval, and at once when the gateway calls the region back (it
// registers the callback first, when one is configured): the own batches not uploaded yet go up, then the download
// batches after the region's cursor are imported. Progress is replicated,
// so a new leader goes on where the last stood; an error is logged and
// the next round tries again.
func efgsJob(s *efgssync.Sync, interval time.Duration, logger *slog.Logger) node.LeaderJob {
	return func(ctx context.Context, n *node.Node) error {
		s.Now = n.Config().Now
		woken, registered := n.Woken("efgs"), false
		for {
			if n.RegionVersion() >= command.EFGS {
				if !registered {
					if err := s.Register(ctx); err != nil {
						logger.Warn("efgs: callback not registered", "err", err)
					} else {
						registered = true
					}
				}
				if _, err := s.Upload(ctx, n.FSM(), n); err != nil {
					logger.Warn("efgs: upload", "err", err)
				}
				if err := download(ctx, s, n); err != nil {
					logger.Warn("efgs: download", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			case <-woken: // the gateway called back
			}
		}
	}
}

// download imports the gateway's new batches, unless the service winds
// down: the region's own keys still go up then, none come in.
func download(ctx context.Context, s *efgssync.Sync, n *node.Node) error {
	if n.FSM().WindingDown(n.Config().Now().Unix()) {
		return nil
	}
	_, err := s.Download(ctx, n.FSM(), n, n.Config().Now())
	return err
}
