package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/api"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/hsm"
	"github.com/covid-backend/covid-backend/stats"
)

// serveConfig holds the settings of `covid-node serve`. Each can also come
// from the JSON config file (--config) under the flag's name; a flag given on
// the command line wins over the file.
type serveConfig struct {
	NodeID, Region, DataDir, HTTPAddr, RaftAddr string
	RaftAdvertise                               string
	Bootstrap, Edge                             bool
	Join, AdminTokenFile, TrustedProxies        string
	SnapshotInterval, WriteTimeout, SealEvery   time.Duration
	StallTimeout                                time.Duration
	TestStallFile                               string
	MinFreeDiskMiB                              int64
	Retention, CodeTTL                          time.Duration
	SealMinKeys, PaddingPerDay                  int
	ExportKeyFiles, ExportKeyIDs, ExportKeyVers string
	ExportKeysRetired                           string
	PKCS11                                      hsm.Config
	TestClockOffset                             time.Duration
	TLSCAFile, TLSCertFile, TLSKeyFile          string
	HTTPSCertFile, HTTPSKeyFile                 string
	FederationCAFile, ExportDir                 string
	VerifyCertKeyFiles, VerifyCertKids          string
	VerifyTokenKeyFiles, VerifyTokenKids        string
	VerifyIssuer, VerifyAudience, VerifyAppIDs  string
	VerifyCodeTTL, VerifyLongCodeTTL            time.Duration
	SMSWebhookURL, SMSTokenFile, SMSTemplate    string
	SMSRegion, SMSAllowedRegions                string
	SMSPerHour                                  int
	StatsThreshold                              int
	JWKSInterval                                time.Duration
	JWKSCAFile                                  string
	GAENCAFile                                  string
	EFGS                                        efgsConfig
	Hub                                         hubConfig
	InsecureDev                                 bool
	CodeKeyFiles, RevisionKeyFiles              string
	SigningKeyFile, SigningKeyID                string
	FederationAddr, FederationJoin, PoolKeyFile string
	SnapshotThreshold, TrailingLogs             uint64
	Dev, NoBatchApply                           bool
	LogLevel                                    string
	Limits                                      api.Limits
	configFile                                  string
	shutdownTimeout                             time.Duration
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.configFile, "config", "", "JSON config file; keys are the flag names; flags win")
	fs.StringVar(&c.NodeID, "node-id", "", "id of this node, unique in its region (required)")
	fs.StringVar(&c.Region, "region", "", "name of the region (required)")
	fs.StringVar(&c.DataDir, "data-dir", "", "directory for the raft log, snapshots and keys (required)")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address, also advertised to peers")
	fs.StringVar(&c.RaftAddr, "raft-addr", "127.0.0.1:7000", "raft listen address, also advertised to peers")
	fs.StringVar(&c.RaftAdvertise, "raft-advertise", "", "the address peers reach the raft port at, if not --raft-addr (a proxy or NAT in between; the same IP, another port)")
	fs.BoolVar(&c.Bootstrap, "bootstrap", false, "start a new region with this node as its only voter (ignored when the data dir has state)")
	fs.BoolVar(&c.Edge, "edge", false, "with --join: join as a read-only edge node, a raft non-voter that serves every read and forwards writes, never counting toward quorum")
	fs.StringVar(&c.Join, "join", "", "comma-separated HTTP URLs of members to join (ignored when the data dir has state)")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", "", "file with the region's admin token; created with a random token if missing (default <data-dir>/admin-token)")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", 2*time.Minute, "how often raft checks whether to snapshot")
	fs.Uint64Var(&c.SnapshotThreshold, "snapshot-threshold", 8192, "log entries since the last snapshot that trigger one")
	fs.Uint64Var(&c.TrailingLogs, "raft-trailing-logs", 10240, "log entries kept after a snapshot; followers further behind get the snapshot")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "how long a write waits for a leader before 503")
	fs.DurationVar(&c.StallTimeout, "stall-timeout", 10*time.Second, "a write to the raft log that hangs longer stops the node (exit status 4), so that the region elects another leader")
	fs.StringVar(&c.TestStallFile, "test-stall-file", "", "for fault tests only: while this file exists, writes to the raft log hang")
	fs.Int64Var(&c.MinFreeDiskMiB, "min-free-disk-mib", 256, "free space the data dir keeps in reserve: below it the node takes no writes (503 disk_full) and hands leadership on, and serves reads")
	fs.BoolVar(&c.NoBatchApply, "raft-no-batch-apply", false, "do not batch concurrent writes into one raft log write (for measurements)")
	fs.DurationVar(&c.SealEvery, "seal-interval", 10*time.Minute, "how often the leader seals expired keys into a batch")
	fs.IntVar(&c.PaddingPerDay, "padding-keys-per-day", fsm.DefaultPaddingKeysPerDay, "pad by the day: the leader seals at every seal interval a batch of a size drawn around this budget spread over the day's seals, real keys and random ones, doubling it while uploads outrun it; 0 (with --seal-min-keys 0): no padding. A new region starts with it, then the replicated policy rules (covid-node policy)")
	fs.IntVar(&c.SealMinKeys, "seal-min-keys", 0, "pad each batch instead up to this many keys (plus 0-100), as before version 9; 0: pad by the day")
	fs.DurationVar(&c.Retention, "retention", 14*24*time.Hour, "how long batches and their keys are kept (GAEN: 14 days). A new region starts with it, then the replicated policy rules")
	fs.DurationVar(&c.CodeTTL, "code-ttl", 24*time.Hour, "how long a one-time code from POST /v1/codes stays valid. A new region starts with it, then the replicated policy rules")
	fs.StringVar(&c.SigningKeyFile, "signing-key-file", "", "the region's federation signing key (Ed25519, from covid-node keygen, or in the PKCS#11 token as pkcs11:object=LABEL); every node of the region the same")
	fs.StringVar(&c.SigningKeyID, "signing-key-id", "", "id of the federation signing key, as other regions trust it (default <region>-1)")
	fs.StringVar(&c.FederationAddr, "federation-addr", "", "join the federation gossip pool on this address (memberlist, TCP and UDP); empty: no federation")
	fs.StringVar(&c.FederationJoin, "federation-join", "", "comma-separated pool members (any region) to join")
	fs.StringVar(&c.PoolKeyFile, "federation-pool-key-file", "", "the pool's shared key (from covid-node keygen --pool); required with --federation-addr. One key a line: the first sends, the others are accepted too (for a rotation)")
	fs.StringVar(&c.ExportKeyFiles, "export-key-file", "", "comma-separated PEM files of the ECDSA P-256 keys that sign exports (every node of the region the same), or keys in the PKCS#11 token as pkcs11:object=LABEL (the leader signs each file once and the region replicates the signature)")
	fs.StringVar(&c.PKCS11.Module, "pkcs11-module", "", "the PKCS#11 module (shared library) of the HSM that keeps pkcs11: export keys, e.g. /usr/lib/softhsm/libsofthsm2.so")
	fs.StringVar(&c.PKCS11.Token, "pkcs11-token", "", "the label of the PKCS#11 token that keeps the pkcs11: export keys")
	fs.StringVar(&c.PKCS11.PinFile, "pkcs11-pin-file", "", "a file holding the token's user PIN (mode 0600)")
	fs.StringVar(&c.ExportKeyIDs, "export-key-id", "", "comma-separated verification key ids, one per export key (the id apps are configured with)")
	fs.StringVar(&c.ExportKeyVers, "export-key-version", "", "comma-separated verification key versions, one per export key")
	fs.StringVar(&c.TLSCAFile, "tls-ca-file", "", "the region CA (PEM): members speak raft only with holders of its certificates (covid-node certs ca)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", "", "this node's certificate from the region CA (covid-node certs node)")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", "", "this node's private key (mode 0600)")
	fs.StringVar(&c.CodeKeyFiles, "code-key-file", "", "comma-separated files of the keys that hash one-time codes (covid-node keygen --secret; every node the same): the first makes, all open, so codes outlive a rotation; none: derived from the admin token")
	fs.StringVar(&c.RevisionKeyFiles, "revision-key-file", "", "comma-separated files of the keys that seal revision tokens, as for --code-key-file")
	fs.StringVar(&c.HTTPSCertFile, "https-cert-file", "", "serve the app and admin API over HTTPS (and HTTP/2) with this certificate chain (PEM); reloaded on SIGHUP and when the file changes")
	fs.StringVar(&c.HTTPSKeyFile, "https-key-file", "", "the HTTPS certificate's private key (mode 0600)")
	fs.StringVar(&c.FederationCAFile, "federation-ca-file", "", "extra CA certificates (PEM) that other regions' HTTPS certificates may chain to, besides the system's")
	fs.StringVar(&c.VerifyCertKeyFiles, "verify-cert-key-file", "", "run the verification service (/api/verify, /api/certificate, /api/issue...): comma-separated ECDSA P-256 PEM files of the keys that sign its certificates, or keys in the PKCS#11 token as pkcs11:object=LABEL (the first signs; every node the same); they become this region's own health authority")
	fs.StringVar(&c.VerifyCertKids, "verify-cert-kid", "", "comma-separated kids of the certificate keys, one per file (the key version /v1/publish knows)")
	fs.StringVar(&c.VerifyTokenKeyFiles, "verify-token-key-file", "", "comma-separated ECDSA P-256 PEM files (or pkcs11:object=LABEL, keys in the PKCS#11 token) of the keys that sign verification tokens (the first signs)")
	fs.StringVar(&c.VerifyTokenKids, "verify-token-kid", "", "comma-separated kids of the token keys, one per file")
	fs.StringVar(&c.VerifyIssuer, "verify-issuer", "", "iss of tokens and certificates (default covid-backend.<region>.verification)")
	fs.StringVar(&c.VerifyAudience, "verify-audience", "", "aud of certificates (default the issuer)")
	fs.StringVar(&c.VerifyAppIDs, "verify-app-id", "", "comma-separated app ids (healthAuthorityID) whose uploads the service's certificates admit")
	fs.DurationVar(&c.VerifyCodeTTL, "verify-code-ttl", 15*time.Minute, "how long an issued code is valid (at most 1h)")
	fs.DurationVar(&c.VerifyLongCodeTTL, "verify-long-code-ttl", 24*time.Hour, "how long a code sent by SMS is valid (at most 24h)")
	fs.StringVar(&c.SMSWebhookURL, "sms-webhook-url", "", "the SMS gateway: codes issued with a phone, and user reports, are sent as POST {\"to\", \"message\"} to this URL")
	fs.StringVar(&c.SMSTokenFile, "sms-webhook-token-file", "", "a file with the bearer token the SMS gateway wants (mode 0600)")
	fs.StringVar(&c.SMSTemplate, "sms-template", "", "the SMS text, with [code], [longcode], [region] and [hours] filled in (default: the code and an ens:// link)")
	fs.StringVar(&c.SMSRegion, "sms-region", "", "the country (ISO 3166-1, e.g. DE) a phone number written without its country code is read in; empty: numbers need their +country code")
	fs.StringVar(&c.SMSAllowedRegions, "sms-allowed-regions", "", "comma-separated countries whose mobile numbers get an SMS (default: --sms-region alone; with neither, every country's)")
	fs.IntVar(&c.SMSPerHour, "sms-per-hour", 1000, "SMS this node sends in an hour at most; past it a code to be sent is expired and the answer says so (503 sms_quota_reached)")
	fs.StringVar(&c.JWKSCAFile, "jwks-ca-file", "", "CA certificates (PEM) to trust, besides the system's, for health authorities' JWKS URLs")
	fs.StringVar(&c.GAENCAFile, "gaen-ca-file", "", "CA certificates (PEM) to trust, besides the system's, for the GAEN sources' URLs (trust add-gaen)")
	c.EFGS.flags(fs)
	c.Hub.flags(fs)
	fs.DurationVar(&c.JWKSInterval, "jwks-interval", 5*time.Minute, "how often the leader fetches the key set of a health authority registered with a JWKS URL")
	fs.IntVar(&c.StatsThreshold, "stats-threshold", stats.DefaultThreshold, "the smallest count the statistics (portal, stats API) show as it is; counts from 1 below it read \"<N\"")
	fs.StringVar(&c.ExportDir, "export-dir", "", "keep a mirror of the downloads in this directory (v1/exports/index.txt, batches.txt and their files, written whole), for nginx or a CDN origin to serve")
	fs.BoolVar(&c.InsecureDev, "insecure-dev", false, "speak raft in plaintext, without certificates (loopback development only)")
	fs.DurationVar(&c.TestClockOffset, "test-clock-offset", 0, "for fault tests only: shift this node's clock by this much")
	fs.StringVar(&c.ExportKeysRetired, "export-key-retired", "", "comma-separated id/version of export keys that sign no new batch but still the files sealed while they were in force (keep them 14 days after retiring)")
	d := api.DefaultLimits()
	fs.Float64Var(&c.Limits.PublishRate, "rate-publish", d.PublishRate, "uploads per second per client IP (0: no limit)")
	fs.IntVar(&c.Limits.PublishBurst, "rate-publish-burst", d.PublishBurst, "uploads a client IP may send at once")
	fs.Float64Var(&c.Limits.ReadRate, "rate-read", d.ReadRate, "reads per second per client IP (0: no limit)")
	fs.IntVar(&c.Limits.ReadBurst, "rate-read-burst", d.ReadBurst, "reads a client IP may send at once")
	fs.Float64Var(&c.Limits.CodeFailuresPerHour, "code-failures-per-hour", d.CodeFailuresPerHour, "wrong one-time codes a client IP may send per hour, and apart as many wrong admin tokens (0: no limit)")
	fs.IntVar(&c.Limits.CodeFailureBurst, "code-failure-burst", d.CodeFailureBurst, "wrong one-time codes (and apart wrong admin tokens) a client IP may send at once")
	fs.IntVar(&c.Limits.MaxUploadsInFlight, "max-uploads-in-flight", d.MaxUploadsInFlight, "uploads processed at once on this node; more wait up to --upload-queue-wait, then get 429 (0: no cap)")
	fs.DurationVar(&c.Limits.UploadQueueWait, "upload-queue-wait", d.UploadQueueWait, "how long an upload over --max-uploads-in-flight waits for a slot before 429")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated proxy addresses or CIDRs whose X-Forwarded-For is trusted")
	fs.BoolVar(&c.Dev, "dev", false, "development mode: create and register a development health authority, and a development export key when none is given")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long SIGTERM waits for requests in flight")
}

// parseServe reads flags, then fills what was not set on the command line
// from the config file.
func parseServe(args []string) (*serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	describe(fs, "serve")
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.configFile != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if err := c.mergeFile(fs, set); err != nil {
			return nil, err
		}
	}
	if c.AdminTokenFile == "" && c.DataDir != "" {
		c.AdminTokenFile = c.DataDir + "/admin-token"
	}
	var errs []error
	for name, v := range map[string]string{"node-id": c.NodeID, "region": c.Region, "data-dir": c.DataDir} {
		if v == "" {
			errs = append(errs, fmt.Errorf("--%s is required", name))
		}
	}
	if c.PaddingPerDay < 0 || c.SealMinKeys < 0 {
		errs = append(errs, errors.New("--padding-keys-per-day and --seal-min-keys: want 0 or more (both 0: no padding)"))
	}
	return &c, errors.Join(errs...)
}

// mergeFile applies the config file's values to the flags not set on the
// command line, by setting them through the flag set itself.
func (c *serveConfig) mergeFile(fs *flag.FlagSet, set map[string]bool) error {
	b, err := os.ReadFile(c.configFile)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("config file %s: %w", c.configFile, err)
	}
	for name, val := range raw {
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("config file %s: unknown setting %q", c.configFile, name)
		}
		if set[name] {
			continue
		}
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			s = strings.TrimSpace(string(val)) // numbers and booleans
		}
		if err := f.Value.Set(s); err != nil {
			return fmt.Errorf("config file %s: setting %q: %w", c.configFile, name, err)
		}
	}
	return nil
}

// policy is the region policy the flags describe: what a new region starts
// with, before operators change it.
func (c *serveConfig) policy() *fsmpb.Policy {
	p := &fsmpb.Policy{RetentionSeconds: int64(c.Retention / time.Second), CodeTtlSeconds: int64(c.CodeTTL / time.Second)}
	switch {
	case c.SealMinKeys > 0:
		p.SealMinKeys = uint32(c.SealMinKeys)
	case c.PaddingPerDay > 0:
		p.PaddingKeysPerDay = uint32(c.PaddingPerDay)
	default:
		p.NoPadding = true
	}
	return p
}
