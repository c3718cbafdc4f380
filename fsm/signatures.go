package fsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// maxFileSignatures bounds one SIGN_FILES: the files ending with a batch
// (its parts and its day's roll-up's) by each of at most 10 keys.
const maxFileSignatures = 1000

// maxAppConfigSigners bounds the signatures of an app configuration's
// zip: one by each export key, at most 10 (what devices read).
const maxAppConfigSigners = 10

// applySignFiles keeps the signatures the leader made once with keys
// whose signatures differ each time (from version 8), so that every node
// serves the same bytes without the key: of the files that end with a
// batch, or of an app configuration's zip. Each must verify under its
// key, which for a batch is one of the batch's signers; a signature kept
// already for the same digest and key stays (a new leader that signs a
// file again changes nothing), so each file is served with one signature
// by each key for good.
func applySignFiles(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	req := cmd.GetSignFiles()
	if len(req.GetSignatures()) > maxFileSignatures {
		return refuse(command.CodeInvalidCommand, "%d signatures, at most %d", len(req.GetSignatures()), maxFileSignatures)
	}
	switch {
	case req.GetBatchSeq() != 0 && req.GetAppConfigVersion() == 0:
		return s.signBatch(req)
	case req.GetAppConfigVersion() != 0 && req.GetBatchSeq() == 0:
		return s.signAppConfig(req)
	}
	return refuse(command.CodeInvalidCommand, "name a batch or an app configuration version, one of them")
}

func (s *state) signBatch(req *fsmpb.SignFiles) *fsmpb.Result {
	i := slices.IndexFunc(s.batches, func(b *Batch) bool { return b.Seq == req.GetBatchSeq() })
	if i < 0 {
		return refuse(command.CodeInvalidCommand, "batch %d is not kept", req.GetBatchSeq())
	}
	b := s.batches[i]
	for _, sig := range req.GetSignatures() {
		j := slices.IndexFunc(b.Signers, func(sg *fsmpb.ExportSigner) bool {
			return sg.GetKeyId() == sig.GetKeyId() && sg.GetKeyVersion() == sig.GetKeyVersion() && len(sg.GetPublicKey()) > 0
		})
		if j < 0 || !bytes.Equal(b.Signers[j].GetPublicKey(), sig.GetPublicKey()) {
			return refuse(command.CodeBadSignature, "key %s/%s does not sign batch %d's files with replicated signatures", sig.GetKeyId(), sig.GetKeyVersion(), b.Seq)
		}
		if err := checkFileSignature(sig); err != nil {
			return refuse(command.CodeBadSignature, "batch %d: %v", b.Seq, err)
		}
	}
	signed := *b // batches are shared with snapshots: copied, not changed
	signed.Signatures = mergeSignatures(b.Signatures, req.GetSignatures())
	signed.Signed = b.Signed || req.GetComplete()
	s.batches[i] = &signed
	return &fsmpb.Result{}
}

func (s *state) signAppConfig(req *fsmpb.SignFiles) *fsmpb.Result {
	i := slices.IndexFunc(s.appConfigs, func(c *fsmpb.AppConfig) bool { return c.GetVersion() == req.GetAppConfigVersion() })
	if i < 0 {
		return refuse(command.CodeInvalidCommand, "app configuration version %d is not kept", req.GetAppConfigVersion())
	}
	signers := s.appConfigs[i].GetSigners()
	for _, sig := range req.GetSignatures() {
		j := slices.IndexFunc(signers, func(sg *fsmpb.ExportSigner) bool {
			return sg.GetKeyId() == sig.GetKeyId() && sg.GetKeyVersion() == sig.GetKeyVersion() && len(sg.GetPublicKey()) > 0
		})
		if len(signers) > 0 && (j < 0 || !bytes.Equal(signers[j].GetPublicKey(), sig.GetPublicKey())) {
			return refuse(command.CodeBadSignature, "key %s/%s does not sign app configuration %d with replicated signatures", sig.GetKeyId(), sig.GetKeyVersion(), req.GetAppConfigVersion())
		}
		if err := checkFileSignature(sig); err != nil {
			return refuse(command.CodeBadSignature, "app configuration %d: %v", req.GetAppConfigVersion(), err)
		}
	}
	c := proto.CloneOf(s.appConfigs[i])
	for _, sig := range req.GetSignatures() { // one signature a key: the zip's export.bin is one
		if !slices.ContainsFunc(c.GetSignatures(), func(k *fsmpb.FileSignature) bool {
			return k.GetKeyId() == sig.GetKeyId() && k.GetKeyVersion() == sig.GetKeyVersion()
		}) && len(c.GetSignatures()) < maxAppConfigSigners {
			c.Signatures = append(c.Signatures, proto.CloneOf(sig))
		}
	}
	s.appConfigs[i] = c
	return &fsmpb.Result{}
}

// checkFileSignature verifies a signature of a SHA-256 digest under the
// P-256 key it names.
func checkFileSignature(sig *fsmpb.FileSignature) error {
	pub, err := x509.ParsePKIXPublicKey(sig.GetPublicKey())
	key, ok := pub.(*ecdsa.PublicKey)
	switch {
	case err != nil || !ok:
		return fmt.Errorf("key %s/%s: not an ECDSA public key", sig.GetKeyId(), sig.GetKeyVersion())
	case len(sig.GetDigest()) != 32:
		return fmt.Errorf("key %s/%s: a digest of %d bytes, want SHA-256's 32", sig.GetKeyId(), sig.GetKeyVersion(), len(sig.GetDigest()))
	case !ecdsa.VerifyASN1(key, sig.GetDigest(), sig.GetSignature()):
		return fmt.Errorf("key %s/%s: the signature does not verify", sig.GetKeyId(), sig.GetKeyVersion())
	}
	return nil
}

// mergeSignatures adds the signatures of digests and keys not kept yet,
// in order: the first signature of a file by a key stays.
func mergeSignatures(kept, more []*fsmpb.FileSignature) []*fsmpb.FileSignature {
	out := slices.Clone(kept)
	for _, sig := range more {
		if findSignature(out, sig.GetDigest(), sig.GetKeyId(), sig.GetKeyVersion()) == nil {
			out = append(out, proto.CloneOf(sig))
		}
	}
	return out
}

// findSignature is the signature of a digest by a key among sigs, or nil.
func findSignature(sigs []*fsmpb.FileSignature, digest []byte, keyID, keyVersion string) *fsmpb.FileSignature {
	for _, sig := range sigs {
		if bytes.Equal(sig.GetDigest(), digest) && sig.GetKeyId() == keyID && sig.GetKeyVersion() == keyVersion {
			return sig
		}
	}
	return nil
}

// FileSignature returns the replicated signature of a file's export.bin
// digest by a key, kept with the batch the file ends with (seq), or with
// app configuration version appConfig when seq is 0; nil when there is
// none yet.
func (f *FSM) FileSignature(seq, appConfig uint32, digest []byte, keyID, keyVersion string) []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var sigs []*fsmpb.FileSignature
	if b := f.state.batch(seq); seq != 0 && b != nil {
		sigs = b.Signatures
	}
	if i := slices.IndexFunc(f.state.appConfigs, func(c *fsmpb.AppConfig) bool { return c.GetVersion() == appConfig }); seq == 0 && i >= 0 {
		sigs = f.state.appConfigs[i].GetSignatures()
	}
	if sig := findSignature(sigs, digest, keyID, keyVersion); sig != nil {
		return slices.Clone(sig.GetSignature())
	}
	return nil
}
