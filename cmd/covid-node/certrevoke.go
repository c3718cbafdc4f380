package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/covid-backend/covid-backend/api"
)

// certsRevocation revokes a member certificate in the region (certs
// revoke) or lists the revoked ones (certs revoked).
func certsRevocation(ctx context.Context, args []string, stdout io.Writer) error {
	if args[0] == "revoked" {
		return list(ctx, "certs revoked", "/v1/admin/certs/revoked", args[1:], stdout)
	}
	var req api.CertRevocation
	var file string
	c, err := subcommand("certs revoke", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&file, "cert", "", "the certificate to revoke (PEM), e.g. a leaked renewal or a stolen copy")
		fs.StringVar(&req.CertSHA256, "sha256", "", "or its SHA-256, as 64 hex digits")
		fs.StringVar(&req.NodeID, "id", "", "the node it names (taken from --cert when given)")
		fs.StringVar(&req.Reason, "reason", "", "why (required)")
	})
	if err != nil {
		return err
	}
	if file != "" {
		if req.CertSHA256, req.NodeID, err = certDigest(file); err != nil {
			return fmt.Errorf("certs revoke: %w", err)
		}
	}
	if req.CertSHA256 == "" || req.Reason == "" {
		return errors.New("certs revoke: want --cert FILE (or --sha256 HEX) and --reason")
	}
	if err := c.do(ctx, http.MethodPost, "/v1/admin/certs/revoked", req, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "certificate %s of %q revoked: no member of the region takes it from now on\n", req.CertSHA256, req.NodeID)
	return nil
}

// certDigest is the SHA-256 of a PEM certificate's DER, as members compare
// it, and the node id it names.
func certDigest(file string) (sum, id string, err error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", "", fmt.Errorf("%s holds no PEM certificate", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", file, err)
	}
	d := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(d[:]), cert.Subject.CommonName, nil
}
