package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/covid-backend/covid-backend/servingcert"
)

// httpsReloadCheck is how often the HTTPS certificate files are checked for
// changes (SIGHUP reloads at once).
const httpsReloadCheck = 30 * time.Second

// httpsConfig loads the API's HTTPS certificate and keeps it reloaded until
// ctx ends; nil without --https-cert-file (plain HTTP).
func httpsConfig(ctx context.Context, c *serveConfig, logger *slog.Logger) (*tls.Config, error) {
	switch {
	case c.HTTPSCertFile == "" && c.HTTPSKeyFile == "":
		return nil, nil
	case c.HTTPSCertFile == "" || c.HTTPSKeyFile == "":
		return nil, errors.New("--https-cert-file and --https-key-file go together")
	case c.InsecureDev:
		return nil, errors.New("--insecure-dev forwards writes in plaintext on the API port; with HTTPS give the members certificates (--tls-*)")
	}
	cert, err := servingcert.Load(c.HTTPSCertFile, c.HTTPSKeyFile)
	if err != nil {
		return nil, err
	}
	go cert.Watch(ctx, httpsReloadCheck, logger)
	return cert.ServerConfig(), nil
}

// apiScheme is how other regions reach this node's API.
func (c *serveConfig) apiScheme() string {
	if c.HTTPSCertFile != "" {
		return "https"
	}
	return "http"
}

// federationRoots are the CAs other regions' HTTPS certificates may chain
// to: the system's, and those of --federation-ca-file.
func federationRoots(c *serveConfig) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if c.FederationCAFile == "" {
		return roots, nil
	}
	pem, err := os.ReadFile(c.FederationCAFile)
	if err != nil {
		return nil, fmt.Errorf("federation CA: %w", err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("federation CA %s: no certificate in it", c.FederationCAFile)
	}
	return roots, nil
}
