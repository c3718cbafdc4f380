package main

import (
	"bytes"
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

// signTick is how often the leader looks for a new batch or app
// configuration version to sign with keys kept in an HSM (a look costs
// two reads when there is none): a seal's files are listed once signed,
// about this long after; after a failure it waits signBackoff.
const (
	signTick    = 20 * time.Millisecond
	signBackoff = 5 * time.Second
)

// signJob signs, on the leader, with the export keys kept in an HSM
// (whose signatures differ each time): the files that end with each
// batch, and each app configuration version, once; SIGN_FILES replicates
// the signatures so that every node serves the same bytes and no other
// node signs. Batches are signed oldest first, each marked signed with
// its last file (the indexes list it from then on); a new leader signs
// what its predecessor left, and a signature kept already stays
// (fsm/signatures.go). A leader without such keys signs nothing: it says
// so while a batch waits for its signatures (the indexes stop there).
func signJob(cfg feed.Config, keys []export.SigningKey, logger *slog.Logger) node.LeaderJob {
	hsmKeys := slices.DeleteFunc(slices.Clone(keys), func(k export.SigningKey) bool { return k.Private != nil })
	if len(hsmKeys) == 0 {
		return warnUnsigned(logger)
	}
	return func(ctx context.Context, n *node.Node) error {
		catalog := feed.NewCatalog(cfg, n.FSM())
		configs := map[uint32]bool{}        // versions signed by every key
		var batchesDone, configsDone uint32 // the newest batch and version looked at
		for {
			wait := signTick
			if lastBatch := n.FSM().LastBatch(); n.RegionVersion() >= command.ReplicatedSignatures && lastBatch != batchesDone {
				if err := signBatches(ctx, n, catalog, hsmKeys); err != nil {
					logger.Warn("sign export files: the indexes list no later batch until this is mended", "err", err)
					wait = signBackoff
				} else {
					batchesDone = lastBatch
				}
			}
			if v := n.FSM().AppConfigVersion(); n.RegionVersion() >= command.ReplicatedSignatures && v != configsDone {
				if err := signAppConfigs(ctx, n, hsmKeys, configs); err != nil {
					logger.Warn("sign app configurations", "err", err)
					wait = signBackoff
				} else {
					configsDone = v
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	}
}

// signBatches signs the files of each batch not yet signed, oldest first,
// and marks it signed; it stops at the first it cannot sign.
func signBatches(ctx context.Context, n *node.Node, catalog *feed.Catalog, keys []export.SigningKey) error {
	for _, b := range n.FSM().Batches() {
		if b.Signed || !fsm.Replicated(b.Signers) {
			continue
		}
		if err := ownSigners(b.Signers, keys); err != nil {
			return fmt.Errorf("batch %d: %w", b.Seq, err)
		}
		pending, err := catalog.ToSign(b.Seq)
		if err != nil {
			return fmt.Errorf("batch %d: %w", b.Seq, err)
		}
		var sigs []*fsmpb.FileSignature
		for _, p := range pending {
			for _, sg := range p.Signers {
				sig, err := signDigest(keys, sg.GetKeyId(), sg.GetKeyVersion(), p.Digest)
				if err != nil {
					return fmt.Errorf("%s: %w", p.Name, err)
				}
				sigs = append(sigs, sig)
			}
		}
		if err := command.SignFiles(ctx, n, &fsmpb.SignFiles{BatchSeq: b.Seq, Signatures: sigs, Complete: true}); err != nil {
			return fmt.Errorf("batch %d: %w", b.Seq, err)
		}
		n.Nudge() // every node lists the batch once it applies this
	}
	return nil
}

// ownSigners checks that this node holds, in its token, each key a batch
// was sealed with to replicate signatures of, the same key: a token whose
// key under that label differs (another token, a key made again) signs
// nothing the state machine would refuse.
func ownSigners(signers []*fsmpb.ExportSigner, keys []export.SigningKey) error {
	for _, sg := range signers {
		if len(sg.GetPublicKey()) == 0 {
			continue
		}
		i := slices.IndexFunc(keys, func(k export.SigningKey) bool { return k.KeyID == sg.GetKeyId() && k.KeyVersion == sg.GetKeyVersion() })
		if i < 0 {
			return fmt.Errorf("export key %s/%s is not among this node's keys in the token", sg.GetKeyId(), sg.GetKeyVersion())
		}
		der, err := x509.MarshalPKIXPublicKey(keys[i].Public())
		if err != nil || !bytes.Equal(der, sg.GetPublicKey()) {
			return fmt.Errorf("the token's key %s/%s is not the one the batch was sealed with", sg.GetKeyId(), sg.GetKeyVersion())
		}
	}
	return nil
}

// signAppConfigs signs the zip of every kept app configuration version
// that lacks a replicated signature by one of keys; done remembers the
// versions signed by all (a version never changes).
func signAppConfigs(ctx context.Context, n *node.Node, keys []export.SigningKey, done map[uint32]bool) error {
	for _, h := range n.FSM().AppConfigHistory() {
		if done[h.GetVersion()] {
			continue
		}
		c, ok := n.FSM().AppConfig(h.GetVersion())
		if !ok {
			continue
		}
		bin, err := appconfig.Bin(c)
		if err != nil {
			return err
		}
		digest := sha256.Sum256(bin)
		need, err := appConfigSigners(c, keys)
		if err != nil {
			return fmt.Errorf("app configuration %d: %w", c.GetVersion(), err)
		}
		var sigs []*fsmpb.FileSignature
		for _, k := range need {
			if n.FSM().FileSignature(0, c.GetVersion(), digest[:], k.GetKeyId(), k.GetKeyVersion()) != nil {
				continue
			}
			sig, err := signDigest(keys, k.GetKeyId(), k.GetKeyVersion(), digest)
			if err != nil {
				return err
			}
			sigs = append(sigs, sig)
		}
		if len(sigs) > 0 {
			if err := command.SignFiles(ctx, n, &fsmpb.SignFiles{AppConfigVersion: c.GetVersion(), Signatures: sigs}); err != nil {
				return fmt.Errorf("app configuration %d: %w", c.GetVersion(), err)
			}
		}
		done[c.GetVersion()] = true
	}
	return nil
}

// appConfigSigners are the keys kept in an HSM that sign a configuration's
// zip: its recorded signers with a public key (this node's token holding
// the same keys), or, for a configuration of version 7, this node's.
func appConfigSigners(c *fsmpb.AppConfig, keys []export.SigningKey) ([]*fsmpb.ExportSigner, error) {
	if len(c.GetSigners()) == 0 {
		var out []*fsmpb.ExportSigner
		for _, k := range keys {
			out = append(out, &fsmpb.ExportSigner{KeyId: k.KeyID, KeyVersion: k.KeyVersion})
		}
		return out, nil
	}
	if err := ownSigners(c.GetSigners(), keys); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(slices.Clone(c.GetSigners()), func(sg *fsmpb.ExportSigner) bool { return len(sg.GetPublicKey()) == 0 }), nil
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

// warnUnsigned is the signing job of a leader without keys in an HSM: it
// warns, every signBackoff, while a batch sealed with one waits unsigned.
func warnUnsigned(logger *slog.Logger) node.LeaderJob {
	return func(ctx context.Context, n *node.Node) error {
		for {
			for _, b := range n.FSM().Batches() {
				if fsm.Replicated(b.Signers) && !b.Signed {
					logger.Warn("batch waits for its export files' signatures, but this leader has no export key in an HSM (--export-key-file pkcs11:object=...): the indexes list no later batch", "batch", b.Seq)
					break
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(signBackoff):
			}
		}
	}
}
