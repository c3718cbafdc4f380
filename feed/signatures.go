package feed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// ErrNotSigned means a file's replicated signature is not in the state
// yet: the leader signs each file with a key kept in an HSM once, a moment
// after the seal, and every node serves it from then on (retry).
var ErrNotSigned = errors.New("the file is not signed yet; retry")

// listable is the batches whose files the indexes list: those before the
// first batch whose replicated signatures are not all kept yet, so that
// no index names a file a node cannot serve.
func listable(batches []fsm.BatchInfo) []fsm.BatchInfo {
	for i, b := range batches {
		if fsm.Replicated(b.Signers) && !b.Signed {
			return batches[:i]
		}
	}
	return batches
}

// replicated signs a file's export.bin with the signature the state keeps
// for it (by the leader, once): a crypto.Signer that has no key.
type replicated struct {
	src        Source
	seq        uint32 // the batch that keeps the file's signatures
	appConfig  uint32 // or the app configuration version
	pub        *ecdsa.PublicKey
	keyID, ver string
}

func (r replicated) Public() crypto.PublicKey { return r.pub }

func (r replicated) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	if sig := r.src.FileSignature(r.seq, r.appConfig, digest, r.keyID, r.ver); sig != nil {
		return sig, nil
	}
	return nil, ErrNotSigned
}

// replicatedKey is the key of signer sg whose signatures batch seq (or app
// configuration version appConfig) keeps.
func replicatedKey(src Source, sg *fsmpb.ExportSigner, seq, appConfig uint32) (export.SigningKey, error) {
	pub, err := x509.ParsePKIXPublicKey(sg.GetPublicKey())
	key, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok {
		return export.SigningKey{}, fmt.Errorf("export key %s/%s: its public key is not ECDSA", sg.GetKeyId(), sg.GetKeyVersion())
	}
	return export.SigningKey{Signer: replicated{src: src, seq: seq, appConfig: appConfig, pub: key, keyID: sg.GetKeyId(), ver: sg.GetKeyVersion()},
		KeyID: sg.GetKeyId(), KeyVersion: sg.GetKeyVersion()}, nil
}

// AppConfigKeys are the keys that sign an app configuration's zip: its
// recorded signers (from version 8), a key whose signatures are
// replicated answering with the state's signature, any other with this
// node's private key (ErrNoSigningKey without it); a configuration of
// version 7 is signed with this node's keys (those in an HSM through
// replicated signatures as well).
func AppConfigKeys(src Source, keys []export.SigningKey, cfg *fsmpb.AppConfig) ([]export.SigningKey, error) {
	v := cfg.GetVersion()
	if len(cfg.GetSigners()) == 0 {
		out := slices.Clone(keys)
		for i, k := range out {
			if k.Private == nil {
				out[i].Signer = replicated{src: src, appConfig: v, pub: k.Public(), keyID: k.KeyID, ver: k.KeyVersion}
			}
		}
		return out, nil
	}
	var out []export.SigningKey
	for _, sg := range cfg.GetSigners() {
		if len(sg.GetPublicKey()) > 0 {
			k, err := replicatedKey(src, sg, 0, v)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
			continue
		}
		i := slices.IndexFunc(keys, func(k export.SigningKey) bool {
			return k.Private != nil && k.KeyID == sg.GetKeyId() && k.KeyVersion == sg.GetKeyVersion()
		})
		if i < 0 {
			return nil, fmt.Errorf("%w: %s/%s", ErrNoSigningKey, sg.GetKeyId(), sg.GetKeyVersion())
		}
		out = append(out, keys[i])
	}
	return out, nil
}

// Unsigned lists the keys of a signing key list whose replicated signature
// of digest is missing.
func Unsigned(keys []export.SigningKey, digest []byte) []export.SigningKey {
	var out []export.SigningKey
	for _, k := range keys {
		if r, ok := k.Signer.(replicated); ok && k.Private == nil && r.src.FileSignature(r.seq, r.appConfig, digest, r.keyID, r.ver) == nil {
			out = append(out, k)
		}
	}
	return out
}

// Pending is a file a key whose signatures are replicated has not signed
// yet: the leader signs Digest (of its export.bin) with each of Signers
// and keeps the signatures with the batch the file ends with.
type Pending struct {
	Name    string
	Digest  [32]byte
	Signers []*fsmpb.ExportSigner
}

// ToSign lists, for the leader, the files that end with batch seq (its
// own file's parts, and its day's roll-up's up to it) whose replicated
// signatures are missing. Once they are kept, with the batch marked
// signed, every name the indexes list up to that batch can be served:
// each roll-up name ends with some batch, signed before it is listed.
func (c *Catalog) ToSign(seq uint32) ([]Pending, error) {
	batches := c.src.Batches()
	i := slices.IndexFunc(batches, func(b fsm.BatchInfo) bool { return b.Seq == seq })
	if i < 0 {
		return nil, ErrNotFound
	}
	b, first, day := batches[i], i, 0
	for first > 0 && dayOf(batches[first-1].EndUnix) == dayOf(b.EndUnix) {
		first--
	}
	for _, d := range batches[first : i+1] {
		day += d.Keys + d.Padding + d.Revised
	}
	var specs []fileSpec
	for p := 1; p <= parts(b.Keys+b.Padding+b.Revised, c.cfg.MaxKeysPerFile); p++ {
		specs = append(specs, fileSpec{start: b.StartUnix, end: b.EndUnix, part: p})
	}
	for p := 1; p <= parts(day, c.cfg.MaxKeysPerFile); p++ {
		specs = append(specs, fileSpec{rollup: true, start: batches[first].EndUnix - 1, end: b.EndUnix, part: p})
	}
	var out []Pending
	for _, spec := range specs {
		f, signing, err := c.exportFile(spec, time.Time{}) // every roll-up of the day up to seq, superseded or not
		if err != nil {
			return nil, err
		}
		bin, err := export.Bin(f, signing)
		if err != nil {
			return nil, fmt.Errorf("export.bin of %s: %w", spec.rel(), err)
		}
		p := Pending{Name: spec.rel(), Digest: sha256.Sum256(bin)}
		for _, k := range signing {
			if r, ok := k.Signer.(replicated); ok && k.Private == nil && c.src.FileSignature(seq, 0, p.Digest[:], r.keyID, r.ver) == nil {
				p.Signers = append(p.Signers, &fsmpb.ExportSigner{KeyId: r.keyID, KeyVersion: r.ver})
			}
		}
		if len(p.Signers) > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}
