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
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/covid-backend/covid-backend/api"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgshub"
	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/node"
)

// hubConfig is the stand-in EU gateway a node serves when --hub-addr is
// set: its own listener, with the hub's HTTPS certificate.
type hubConfig struct {
	Addr, CertFile, KeyFile, SigningKeyFile string
	PrivateCallbacks                        bool
	CallbackCAFile                          string
	CallbackRetry                           time.Duration
}

func (h *hubConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.Addr, "hub-addr", "", "serve a stand-in EU gateway (EFGS's upload, download and audit under /efgs) on this address, from the region's state; countries are added with covid-node hub country")
	fs.StringVar(&h.CertFile, "hub-cert-file", "", "the hub's HTTPS certificate (PEM); countries show their authentication certificates to it")
	fs.StringVar(&h.KeyFile, "hub-key-file", "", "its private key (PEM, mode 0600)")
	fs.BoolVar(&h.PrivateCallbacks, "hub-private-callbacks", false, "let countries' callbacks name private addresses (a hub and its countries on one private network); by default only public addresses are called, checked on the address connected to")
	fs.StringVar(&h.CallbackCAFile, "hub-callback-ca-file", "", "CA certificates (PEM) the countries' callback HTTPS certificates chain to (default: the system's)")
	fs.DurationVar(&h.CallbackRetry, "hub-callback-retry", 5*time.Minute, "how long the hub waits before calling a failed callback again (5 tries, then the callback is deleted, as EFGS did)")
	fs.StringVar(&h.SigningKeyFile, "hub-signing-key-file", "", "an Ed25519 key (covid-node keygen; every node of the hub the same) that signs each download batch, so that a relay can neither reorder nor alter the chain; countries check it with --efgs-hub-key-file")
}

// serveHub starts the hub's listener; the returned function stops it.
// Nothing when no --hub-addr is set.
func serveHub(h hubConfig, n *node.Node, logger *slog.Logger) (func(context.Context) error, error) {
	if h.Addr == "" {
		return func(context.Context) error { return nil }, nil
	}
	cert, err := tls.LoadX509KeyPair(h.CertFile, h.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--hub-cert-file: %w", err)
	}
	hub := &efgshub.Hub{State: n.FSM(), Applier: n, Now: n.Config().Now, Logger: logger, PrivateCallbacks: h.PrivateCallbacks}
	if h.SigningKeyFile != "" {
		key, err := federation.LoadKey(h.SigningKeyFile, "hub")
		if err != nil {
			return nil, fmt.Errorf("--hub-signing-key-file: %w", err)
		}
		hub.Key = key.Private.(ed25519.PrivateKey) // a file's key: LoadKey reads Ed25519 alone
	}
	ln, err := net.Listen("tcp", h.Addr)
	if err != nil {
		return nil, fmt.Errorf("--hub-addr: %w", err)
	}
	// A country is named by its certificate's thumbprint, as EFGS names
	// it: no chain is asked for, only a certificate.
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12}
	srv := &http.Server{Handler: hub,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: time.Minute,
		MaxHeaderBytes: 64 << 10}
	go srv.Serve(tls.NewListener(ln, cfg))
	logger.Info("stand-in EU gateway serving", "addr", h.Addr)
	return srv.Shutdown, nil
}

// hubNotifyJob is the hub leader's job that calls the countries'
// callbacks on each new download batch, every second; nil when no hub is
// served.
func hubNotifyJob(h hubConfig, logger *slog.Logger) (node.LeaderJob, error) {
	if h.Addr == "" {
		return nil, nil
	}
	var roots *x509.CertPool
	if h.CallbackCAFile != "" {
		data, err := os.ReadFile(h.CallbackCAFile)
		if err != nil {
			return nil, fmt.Errorf("--hub-callback-ca-file: %w", err)
		}
		if roots = x509.NewCertPool(); !roots.AppendCertsFromPEM(data) {
			return nil, errors.New("--hub-callback-ca-file: no PEM certificate")
		}
	}
	return func(ctx context.Context, n *node.Node) error {
		notifier := &efgshub.Notifier{State: n.FSM(), Applier: n, Client: efgshub.CallbackClient(h.PrivateCallbacks, roots),
			RetryAfter: h.CallbackRetry, Logger: logger}
		for {
			notifier.Step(ctx, n.Config().Now())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}, nil
}

// hubCmd manages the hub's countries.
func hubCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "country" {
		return errors.New("hub: want country")
	}
	var req api.HubCountryRequest
	var authFiles, signFiles stringsFlag
	var anchorKey string
	c, err := subcommand("hub country", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&req.Country, "country", "", requiredMark+"the country (ISO 3166-1 alpha-2)")
		fs.Var(&authFiles, "auth-cert", "its authentication certificate (PEM); repeat for each in force")
		fs.Var(&signFiles, "sign-cert", "its signing certificate (PEM); repeat for each in force")
		fs.StringVar(&anchorKey, "anchor-key", "", "the trust anchor's private key (PEM), which signs each signing certificate here, never sent (required but with --remove)")
		fs.BoolVar(&req.Remove, "remove", false, "remove the country: it uploads and downloads no more")
	})
	if err != nil {
		return err
	}
	if req.Remove {
		if err := c.do(ctx, http.MethodPost, "/v1/admin/hub/countries", req, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "hub country %s removed\n", req.Country)
		return nil
	}
	if anchorKey == "" || len(authFiles) == 0 || len(signFiles) == 0 {
		return errors.New("hub country: --auth-cert, --sign-cert and --anchor-key needed")
	}
	anchor, err := loadSigner(anchorKey)
	if err != nil {
		return fmt.Errorf("hub country: --anchor-key: %w", err)
	}
	for _, f := range authFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("hub country: %w", err)
		}
		req.AuthCertsPEM = append(req.AuthCertsPEM, string(data))
	}
	for _, f := range signFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("hub country: %w", err)
		}
		sig, err := efgs.AnchorSign(anchor, data)
		if err != nil {
			return err
		}
		req.Signers = append(req.Signers, api.HubSignerRequest{PEM: string(data), AnchorSignature: sig})
	}
	if err := c.do(ctx, http.MethodPost, "/v1/admin/hub/countries", req, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hub country %s: %d authentication and %d signing certificates\n", req.Country, len(authFiles), len(signFiles))
	return nil
}

// loadSigner reads a private key PEM: PKCS #8, SEC 1 (EC) or PKCS #1
// (RSA, what trust anchors often are).
func loadSigner(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return nil, errors.New("no private key PEM block")
		}
		var key any
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", key)
		}
		return signer, nil
	}
}

// stringsFlag is a flag given once for each value.
type stringsFlag []string

func (f *stringsFlag) String() string {
	if f == nil {
		return ""
	}
	return fmt.Sprint([]string(*f))
}

func (f *stringsFlag) Set(v string) error { *f = append(*f, v); return nil }
