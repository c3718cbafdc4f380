package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/covid-backend/covid-backend/appconfig"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
)

// signTick is how often the leader looks for files to sign with keys kept
// in an HSM: a seal's files are listed once signed, this long after.
const signTick = 200 * time.Millisecond

// signJob signs, on the leader, with the export keys kept in an HSM
// (whose signatures differ each time): each file of each batch and each
// app configuration version once, the signatures replicated by SIGN_FILES
// so that every node serves the same bytes and no other node signs. A new
// leader signs what its predecessor left unsigned; a signature kept
// already stays (fsm/signatures.go). nil without such keys.
func signJob(cfg feed.Config, keys []export.SigningKey, logger *slog.Logger) node.LeaderJob {
	hsmKeys := slices.DeleteFunc(slices.Clone(keys), func(k export.SigningKey) bool { return k.Private != nil })
	if len(hsmKeys) == 0 {
		return nil
	}
	return func(ctx context.Context, n *node.Node) error {
		catalog := feed.NewCatalog(cfg, n.FSM())
		done := map[string]bool{}
		for {
			if n.RegionVersion() >= command.ReplicatedSignatures {
				if err := signBatches(ctx, n, catalog, hsmKeys, done); err != nil {
					logger.Warn("sign export files", "err", err)
				}
				if err := signAppConfigs(ctx, n, hsmKeys); err != nil {
					logger.Warn("sign app configurations", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(signTick):
			}
		}
	}
}

// signBatches signs the files the catalog lists (or will once signed)
// that lack a replicated signature, and marks each batch signed, oldest
// first.
func signBatches(ctx context.Context, n *node.Node, catalog *feed.Catalog, keys []export.SigningKey, done map[string]bool) error {
	pending, err := catalog.ToSign(n.Config().Now(), done)
	if err != nil {
		return err
	}
	bySeq := map[uint32][]*fsmpb.FileSignature{}
	for _, p := range pending {
		for _, sg := range p.Signers {
			sig, err := signDigest(keys, sg.GetKeyId(), sg.GetKeyVersion(), p.Digest)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			bySeq[p.Seq] = append(bySeq[p.Seq], sig)
		}
	}
	for _, b := range n.FSM().Batches() {
		sigs := bySeq[b.Seq]
		if len(sigs) == 0 && (b.Signed || !fsm.Replicated(b.Signers)) {
			continue
		}
		if err := command.SignFiles(ctx, n, &fsmpb.SignFiles{BatchSeq: b.Seq, Signatures: sigs, Complete: true}); err != nil {
			return fmt.Errorf("batch %d: %w", b.Seq, err)
		}
	}
	return nil
}

// signAppConfigs signs the zip of every kept app configuration version
// that lacks a replicated signature by one of keys.
func signAppConfigs(ctx context.Context, n *node.Node, keys []export.SigningKey) error {
	for _, h := range n.FSM().AppConfigHistory() {
		c, ok := n.FSM().AppConfig(h.GetVersion())
		if !ok {
			continue
		}
		bin, err := appconfig.Bin(c)
		if err != nil {
			return err
		}
		digest := sha256.Sum256(bin)
		var sigs []*fsmpb.FileSignature
		for _, k := range keys {
			if n.FSM().FileSignature(0, c.GetVersion(), digest[:], k.KeyID, k.KeyVersion) != nil {
				continue
			}
			sig, err := signDigest(keys, k.KeyID, k.KeyVersion, digest)
			if err != nil {
				return err
			}
			sigs = append(sigs, sig)
		}
		if len(sigs) == 0 {
			continue
		}
		if err := command.SignFiles(ctx, n, &fsmpb.SignFiles{AppConfigVersion: c.GetVersion(), Signatures: sigs}); err != nil {
			return fmt.Errorf("app configuration %d: %w", c.GetVersion(), err)
		}
	}
	return nil
}

// signDigest signs a file's export.bin digest with the HSM key id/version.
func signDigest(keys []export.SigningKey, id, version string, digest [32]byte) (*fsmpb.FileSignature, error) {
	i := slices.IndexFunc(keys, func(k export.SigningKey) bool { return k.KeyID == id && k.KeyVersion == version })
	if i < 0 {
		return nil, fmt.Errorf("export key %s/%s is not in this node's HSM keys", id, version)
	}
	der, err := x509.MarshalPKIXPublicKey(keys[i].Public())
	if err != nil {
		return nil, err
	}
	sig, err := keys[i].Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign with %s/%s: %w", id, version, err)
	}
	return &fsmpb.FileSignature{Digest: digest[:], KeyId: id, KeyVersion: version, Signature: sig, PublicKey: der}, nil
}
