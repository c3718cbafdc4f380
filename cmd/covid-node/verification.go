package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/api"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/sms"
	"github.com/covid-backend/covid-backend/verify"
)

// Development verification keys that `serve --dev` makes in the data dir.
const (
	devCertKeyFile  = "dev-verify-cert-key.pem"
	devTokenKeyFile = "dev-verify-token-key.pem"
)

// verification loads the verification service's keys and settings, and
// the leader job that registers its certificate keys as the region's own
// health authority; nil without --verify-cert-key-file (or --dev).
func verification(c *serveConfig, keys *keyFiles) (*api.Verification, node.LeaderJob, error) {
	certFiles, tokenFiles := c.VerifyCertKeyFiles, c.VerifyTokenKeyFiles
	certKids, tokenKids := c.VerifyCertKids, c.VerifyTokenKids
	if certFiles == "" && c.Dev {
		for _, f := range []string{devCertKeyFile, devTokenKeyFile} {
			if _, err := loadOrCreateECKey(filepath.Join(c.DataDir, f)); err != nil {
				return nil, nil, fmt.Errorf("development verification key: %w", err)
			}
		}
		certFiles, tokenFiles = filepath.Join(c.DataDir, devCertKeyFile), filepath.Join(c.DataDir, devTokenKeyFile)
		certKids, tokenKids = "dev-v1", "dev-t1"
	}
	if certFiles == "" {
		return nil, nil, nil
	}
	certKeys, err := loadVerifyKeys(certFiles, certKids, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate keys: %w", err)
	}
	tokenKeys, err := loadVerifyKeys(tokenFiles, tokenKids, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("token keys: %w", err)
	}
	apps := splitList(c.VerifyAppIDs)
	if c.Dev && len(apps) == 0 {
		apps = []string{devApp}
	}
	if len(apps) == 0 {
		return nil, nil, fmt.Errorf("--verify-app-id: name the app ids (healthAuthorityID) whose uploads its certificates admit")
	}
	issuer := c.VerifyIssuer
	if issuer == "" {
		issuer = "covid-backend." + c.Region + ".verification"
	}
	audience := c.VerifyAudience
	if audience == "" {
		audience = issuer
	}
	v := &api.Verification{Issuer: issuer, Audience: audience, TokenKeys: tokenKeys, CertKeys: certKeys, ShortTTL: c.VerifyCodeTTL,
		LongTTL: c.VerifyLongCodeTTL, SMSTemplate: c.SMSTemplate, Region: c.Region,
		Phones:         verify.Phones{Region: c.SMSRegion, Allowed: splitList(c.SMSAllowedRegions), PerHour: c.SMSPerHour},
		StatsThreshold: c.StatsThreshold}
	if err := v.Phones.Validate(); err != nil {
		return nil, nil, fmt.Errorf("--sms-region, --sms-allowed-regions: %w", err)
	}
	if c.VerifyLongCodeTTL < c.VerifyCodeTTL || c.VerifyLongCodeTTL > 24*time.Hour {
		return nil, nil, fmt.Errorf("--verify-long-code-ttl %v: want between --verify-code-ttl and 24h", c.VerifyLongCodeTTL)
	}
	if c.SMSWebhookURL != "" {
		token := ""
		if c.SMSTokenFile != "" {
			b, err := os.ReadFile(c.SMSTokenFile)
			if err != nil {
				return nil, nil, fmt.Errorf("sms gateway token: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
		v.SMS = sms.NewWebhook(c.SMSWebhookURL, token)
	}
	job := func(ctx context.Context, n *node.Node) error {
		return verify.EnsureAuthority(ctx, n, n.FSM(), issuer, audience, apps, certKeys)
	}
	return v, job, nil
}

// loadVerifyKeys reads ECDSA P-256 PEM files (or pkcs11:object=LABEL, a
// key in the token), one kid each, in order: the first signs, all verify.
func loadVerifyKeys(files, kids string, keys *keyFiles) ([]verify.SigningKey, error) {
	f, k := splitList(files), splitList(kids)
	if len(f) == 0 || len(f) != len(k) {
		return nil, fmt.Errorf("%d key files and %d kids: give one kid per file", len(f), len(k))
	}
	var out []verify.SigningKey
	for i, path := range f {
		key, err := keys.load(path)
		if err != nil {
			return nil, err
		}
		out = append(out, verify.SigningKey{Kid: k[i], Private: key})
	}
	return out, nil
}

// maxCodeTTL bounds --verify-code-ttl, as the reference does.
const maxCodeTTL = time.Hour
