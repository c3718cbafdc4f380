package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/api"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/membertls"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/portal"
	"github.com/covid-backend/covid-backend/verify"
)

// serve runs one node until the context ends (SIGINT or SIGTERM), then
// stops serving, hands over leadership and closes the stores.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseServe(args)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger, err := newLogger(stderr, c.LogLevel)
	if err != nil {
		return err
	}
	ncfg := node.Config{
		ID: c.NodeID, Region: c.Region, DataDir: c.DataDir, HTTPAddr: c.HTTPAddr, RaftAddr: c.RaftAddr, RaftAdvertise: c.RaftAdvertise,
		Bootstrap: c.Bootstrap, Edge: c.Edge, Join: splitList(c.Join), AdminToken: "unset",
		SnapshotInterval: c.SnapshotInterval, SnapshotThreshold: c.SnapshotThreshold, TrailingLogs: c.TrailingLogs,
		WriteTimeout: c.WriteTimeout, MinFreeDisk: c.MinFreeDiskMiB << 20,
		StallTimeout: c.StallTimeout, TestStallFile: c.TestStallFile, NoBatchApply: c.NoBatchApply, Logger: logger,
		SealInterval: c.SealEvery, Policy: c.policy(),
	}
	if off := c.TestClockOffset; off != 0 {
		ncfg.Now = func() time.Time { return time.Now().Add(off) }
	}
	if err := ncfg.Validate(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if ncfg.MemberTLS, err = memberCredential(c); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if ncfg.MemberTLS == nil {
		logger.Warn("raft speaks plaintext (--insecure-dev): anyone who reaches the raft port can take over the region")
	}
	listener, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("serve: listen for HTTP: %w", err)
	}
	defer listener.Close()
	if err := checkSecrets(c); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	keys := &keyFiles{token: c.PKCS11}
	exportKeys, err := loadExportKeys(c.ExportKeyFiles, c.ExportKeyIDs, c.ExportKeyVers, keys)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fedKey, err := loadFederationKey(c, keys)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if ncfg.AdminToken, err = loadOrCreateToken(c.AdminTokenFile); err != nil {
		return err
	}
	if c.Dev && len(exportKeys) == 0 {
		if exportKeys, err = devExportKey(c.DataDir); err != nil {
			return err
		}
	}
	if ncfg.ExportSigners, err = exportSigners(exportKeys, c.ExportKeysRetired); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	verifyCfg, verifyJob, err := verification(c, keys)
	if err != nil {
		return fmt.Errorf("serve: verification service: %w", err)
	}
	if c.VerifyCodeTTL <= 0 || c.VerifyCodeTTL > maxCodeTTL {
		return fmt.Errorf("serve: --verify-code-ttl %v: want up to %v", c.VerifyCodeTTL, maxCodeTTL)
	}
	if verifyJob != nil {
		ncfg.LeaderJobs = append(ncfg.LeaderJobs, verifyJob)
	}
	if c.Dev {
		job, err := devAuthorityJob(c.DataDir)
		if err != nil {
			return err
		}
		ncfg.LeaderJobs = append(ncfg.LeaderJobs, job)
	} else {
		ncfg.LeaderJobs = append(ncfg.LeaderJobs, removeDevAuthority)
	}
	codeKeys, err := loadSecrets(c.CodeKeyFiles)
	if err != nil {
		return fmt.Errorf("serve: code keys: %w", err)
	}
	if len(codeKeys) == 0 {
		codeKeys = [][]byte{verify.CodeKeyFromToken(ncfg.AdminToken)}
	}
	fetcher, err := jwksFetcher(c)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	importClient, err := gaenClient(c)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	exchange, err := c.EFGS.sync(logger, keys)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if exchange != nil {
		ncfg.LeaderJobs = append(ncfg.LeaderJobs, efgsJob(exchange, c.EFGS.Interval, logger))
	}
	notify, err := hubNotifyJob(c.Hub, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if notify != nil {
		ncfg.LeaderJobs = append(ncfg.LeaderJobs, notify)
	}
	ncfg.LeaderJobs = append(ncfg.LeaderJobs, signJob(feed.Config{Region: c.Region, SigningKeys: exportKeys}, exportKeys, logger))
	importFiles := gaenImportFiles()
	ncfg.LeaderJobs = append(ncfg.LeaderJobs, sealTOTPJob(codeKeys[0], logger), jwksJob(fetcher, c.JWKSInterval, logger),
		gaenImportJob(importClient, c.InsecureDev, importFiles, logger))
	n, err := node.Open(ctx, ncfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	pool, err := startPool(c, n, logger)
	if err != nil {
		return errors.Join(fmt.Errorf("serve: %w", err), n.Close(ctx))
	}
	if pool != nil {
		defer pool.Close()
	}
	revisionKeys, err := loadSecrets(c.RevisionKeyFiles)
	if err != nil {
		return errors.Join(fmt.Errorf("serve: revision keys: %w", err), n.Close(ctx))
	}
	tlsConfig, err := httpsConfig(ctx, c, logger)
	if err != nil {
		return errors.Join(fmt.Errorf("serve: %w", err), n.Close(ctx))
	}
	srv, err := api.New(api.Config{JWKS: fetcher, Addr: c.HTTPAddr, TLS: tlsConfig, ExportDir: c.ExportDir, Verification: verifyCfg, Now: ncfg.Now, CodeKeys: codeKeys, RevisionKeys: revisionKeys, AdminToken: ncfg.AdminToken, TrustedProxies: splitList(c.TrustedProxies), Limits: c.Limits, Logger: logger, FederationKey: fedKey, Pool: pool,
		Feed: feed.Config{Region: c.Region, SigningKeys: exportKeys}, Mounts: []api.Mount{portalMount(c.Region, ncfg.Now, logger, n)}, Collectors: []prometheus.Collector{importFiles}, EFGSCallback: exchange != nil}, n)
	if err != nil {
		return errors.Join(fmt.Errorf("serve: %w", err), n.Close(ctx))
	}
	stopHub, err := serveHub(c.Hub, n, logger)
	if err != nil {
		return errors.Join(fmt.Errorf("serve: %w", err), n.Close(ctx))
	}
	logger.Info("node serving", "node", c.NodeID, "region", c.Region, "api", c.apiScheme()+"://"+c.HTTPAddr, "raft", c.RaftAddr,
		"admin_token_file", c.AdminTokenFile)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(listener) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	return errors.Join(err, stopHub(sctx), srv.Shutdown(sctx), n.Close(sctx))
}

// portalMount serves the web portal beside the API when the verification
// service runs: it issues codes through the issuer the API shares.
func portalMount(region string, now func() time.Time, logger *slog.Logger, n *node.Node) api.Mount {
	return func(r gin.IRouter, shared api.Shared) error {
		if shared.Issuer == nil {
			return nil // no verification service: no codes to issue
		}
		p, err := portal.New(portal.Config{SessionKey: portal.SessionKey(shared.CodeKeys[0]), CodeKeys: shared.CodeKeys,
			SMS: shared.Issuer.SMS(), Region: region, StatsThreshold: shared.StatsThreshold, ExportSigners: n.Config().ExportSigners, Now: now, Logger: logger}, n, shared.Issuer)
		if err != nil {
			return fmt.Errorf("portal: %w", err)
		}
		p.Routes(r)
		return nil
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// loadOrCreateToken reads the admin token, or creates the file (mode 0600)
// with a random token. The token itself is never logged.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("admin token file %s: token shorter than 16 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create admin token file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write admin token file: %w", err)
	}
	return tok, f.Close()
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i > 0 {
		return path[:i]
	}
	return "."
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkSecrets refuses to start with a secret file that others than its
// owner may read: the admin token, export keys, the federation signing key
// and the pool key (the member key is checked where it is loaded).
func checkSecrets(c *serveConfig) error {
	files := append(splitList(c.ExportKeyFiles), c.SigningKeyFile, c.PoolKeyFile, c.PKCS11.PinFile)
	files = append(append(files, splitList(c.VerifyCertKeyFiles)...), splitList(c.VerifyTokenKeyFiles)...)
	files = append(files, c.SMSTokenFile)
	files = append(append(files, splitList(c.CodeKeyFiles)...), splitList(c.RevisionKeyFiles)...)
	if _, err := os.Stat(c.AdminTokenFile); err == nil {
		files = append(files, c.AdminTokenFile)
	}
	for _, f := range files {
		if f == "" || strings.HasPrefix(f, pkcs11Prefix) { // in the token, no file
			continue
		}
		if err := membertls.CheckSecretFile(f); err != nil {
			return err
		}
	}
	return nil
}

// loadSecrets reads 32-byte keys, base64 in each file (keygen --secret).
func loadSecrets(files string) ([][]byte, error) {
	var out [][]byte
	for _, f := range splitList(files) {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("%s: want 32 random bytes in base64 (covid-node keygen --secret)", f)
		}
		out = append(out, key)
	}
	return out, nil
}
