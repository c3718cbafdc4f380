package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/covid-backend/covid-backend/membertls"
)

// certs makes a region's member credentials: its CA, and a certificate per
// node, so that an operator needs no openssl recipe.
func certs(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("certs: want ca or node")
	}
	fs := flag.NewFlagSet("certs "+args[0], flag.ContinueOnError)
	describe(fs, "certs "+args[0])
	dir := fs.String("dir", "certs", "folder of the CA (ca.pem, ca.key) and of the node certificates")
	alg := fs.String("algorithm", string(membertls.Ed25519), "key type: ed25519 or p256")
	lifetime := fs.Duration("lifetime", 0, "validity (default: 10 years for a CA, 825 days for a node, never beyond its CA)")
	switch args[0] {
	case "ca":
		region := fs.String("region", "", "the region the CA is for")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *region == "" {
			return errors.New("certs ca: --region is required")
		}
		life := *lifetime
		if life == 0 {
			life = membertls.DefaultCALifetime
		}
		ca, err := membertls.NewCA(*region, membertls.Algorithm(*alg), life, time.Now())
		if err != nil {
			return fmt.Errorf("certs ca: %w", err)
		}
		if err := writePair(*dir, "ca", ca); err != nil {
			return fmt.Errorf("certs ca: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s and %s (keep the key offline; give ca.pem to every node with --tls-ca-file)\n",
			filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca.key"))
		return nil
	case "node":
		id := fs.String("id", "", "the node id (the certificate's name)")
		ips := fs.String("ip", "", "comma-separated IPs peers reach the node by")
		dns := fs.String("dns", "", "comma-separated DNS names peers reach the node by")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return nodeCert(*dir, membertls.NodeRequest{ID: *id, DNSNames: splitList(*dns), Alg: membertls.Algorithm(*alg), Lifetime: *lifetime}, *ips, stdout)
	}
	return fmt.Errorf("certs: unknown subcommand %q", args[0])
}

func nodeCert(dir string, req membertls.NodeRequest, ips string, stdout io.Writer) error {
	for _, s := range splitList(ips) {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("certs node: %q is not an IP", s)
		}
		req.IPs = append(req.IPs, ip)
	}
	var ca membertls.PEM
	var err error
	if ca.Cert, err = os.ReadFile(filepath.Join(dir, "ca.pem")); err == nil {
		ca.Key, err = os.ReadFile(filepath.Join(dir, "ca.key"))
	}
	if err != nil {
		return fmt.Errorf("certs node: the CA (make it with covid-node certs ca): %w", err)
	}
	cert, err := membertls.NewNode(ca, req, time.Now())
	if err != nil {
		return fmt.Errorf("certs node: %w", err)
	}
	if err := writePair(dir, req.ID, cert); err != nil {
		return fmt.Errorf("certs node: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s (give them to node %s with --tls-cert-file and --tls-key-file)\n",
		filepath.Join(dir, req.ID+".pem"), filepath.Join(dir, req.ID+".key"), req.ID)
	return nil
}

// writePair writes NAME.pem and NAME.key (0600) into dir, never over
// existing files.
func writePair(dir, name string, p membertls.PEM) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cert, key := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	// Neither is replaced: the key may have been moved offline, as the CA's
	// is meant to be, and a new certificate over the old one would split
	// the region.
	if _, err := os.Stat(cert); err == nil {
		return fmt.Errorf("%s exists: move it away to make a new one", cert)
	}
	if err := writeNew(key, p.Key); err != nil {
		return err
	}
	if err := writeNew(cert, p.Cert); err != nil {
		return err
	}
	return os.Chmod(cert, 0o644)
}
