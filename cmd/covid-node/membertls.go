package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/covid-backend/covid-backend/membertls"
)

// errNoMemberCredential explains what serve needs to speak raft.
var errNoMemberCredential = errors.New("members speak raft over mutual TLS: give --tls-ca-file, --tls-cert-file and --tls-key-file " +
	"(covid-node certs makes them), or --insecure-dev for plaintext raft on a loopback development machine")

// memberCredential is the node's member credential: the files given, a
// development CA and certificate made in the data dir (--dev), or none
// with --insecure-dev on a loopback raft address.
func memberCredential(c *serveConfig) (*membertls.Credentials, error) {
	given := c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != ""
	switch {
	case given && c.InsecureDev:
		return nil, errors.New("--insecure-dev and the --tls-* files exclude each other")
	case given:
		return membertls.Load(c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile)
	case c.InsecureDev:
		host, _, err := net.SplitHostPort(c.RaftAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--insecure-dev speaks plaintext raft on a loopback address only, not %s", c.RaftAddr)
		}
		return nil, nil
	case c.Dev:
		return devMemberCredential(c.DataDir, c.NodeID, c.RaftAddr)
	}
	return nil, errNoMemberCredential
}

// devMemberCredential makes (once) a development CA and this node's
// certificate in the data dir, so that a --dev region speaks TLS too.
func devMemberCredential(dataDir, id, raftAddr string) (*membertls.Credentials, error) {
	dir := filepath.Join(dataDir, "dev-tls")
	if _, err := os.Stat(filepath.Join(dir, id+".pem")); errors.Is(err, os.ErrNotExist) {
		host, _, err := net.SplitHostPort(raftAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil {
			return nil, fmt.Errorf("development certificate: raft address %q has no IP", raftAddr)
		}
		ca, err := membertls.NewCA("dev", membertls.Ed25519, membertls.DefaultCALifetime, time.Now())
		if err != nil {
			return nil, err
		}
		node, err := membertls.NewNode(ca, membertls.NodeRequest{ID: id, IPs: []net.IP{ip}}, time.Now())
		if err != nil {
			return nil, err
		}
		if err := writePair(dir, "ca", ca); err != nil {
			return nil, fmt.Errorf("development CA: %w", err)
		}
		if err := writePair(dir, id, node); err != nil {
			return nil, fmt.Errorf("development certificate: %w", err)
		}
	}
	return membertls.Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, id+".pem"), filepath.Join(dir, id+".key"))
}
