package fsm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// hsmKey is a key whose signatures are replicated, as a seal names it.
func hsmKey(t testing.TB, version string) (*ecdsa.PrivateKey, *fsmpb.ExportSigner) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, &fsmpb.ExportSigner{KeyId: "310", KeyVersion: version, PublicKey: der}
}

// fileSig signs the digest of content with key, as the leader does.
func fileSig(t testing.TB, key *ecdsa.PrivateKey, signer *fsmpb.ExportSigner, content string) *fsmpb.FileSignature {
	t.Helper()
	digest := sha256.Sum256([]byte(content))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return &fsmpb.FileSignature{Digest: digest[:], KeyId: signer.GetKeyId(), KeyVersion: signer.GetKeyVersion(), Signature: sig, PublicKey: signer.GetPublicKey()}
}

func signFiles(seq, appConfig uint32, complete bool, sigs ...*fsmpb.FileSignature) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SIGN_FILES,
		SignFiles: &fsmpb.SignFiles{BatchSeq: seq, AppConfigVersion: appConfig, Signatures: sigs, Complete: complete}}
}

// A batch sealed with a key whose signatures are replicated keeps the
// leader's signatures of its files: each must verify under the batch's
// signer; the first signature of a file by a key stays when a new leader
// signs it again; the batch is signed once complete. An app
// configuration keeps its zip's signatures the same way; a seal of
// version 7 keeps no public key.
func TestSignFiles(t *testing.T) {
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	key, signer := hsmKey(t, "v1")
	other, stranger := hsmKey(t, "v1")
	f := fsm.New()
	seal := sealCmd(1, 0, 0, 0)
	seal.Seal.Signers = []*fsmpb.ExportSigner{signer}
	for _, c := range at(t0, putAuthority(haIssuer, "aud", []string{"app"}, akey("k1", 0, 0)), publishV2(1, 0, nil, dayKey(1, today-2)), seal, setAppConfig(validAppConfig())) {
		mustApply(t, f, c)
	}
	if b := f.Batches()[0]; !fsm.Replicated(b.Signers) || b.Signed {
		t.Fatalf("sealed: %+v", b)
	}
	before := freeze(t, f)
	forged := fileSig(t, key, signer, "batch file")
	forged.Signature[len(forged.Signature)-1] ^= 1
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
		code command.Code
	}{
		{"another key", signFiles(1, 0, true, fileSig(t, other, stranger, "batch file")), command.CodeBadSignature},
		{"a signature that does not verify", signFiles(1, 0, true, forged), command.CodeBadSignature},
		{"a batch not kept", signFiles(2, 0, true, fileSig(t, key, signer, "batch file")), command.CodeInvalidCommand},
		{"both targets", signFiles(1, 1, true, fileSig(t, key, signer, "batch file")), command.CodeInvalidCommand},
	} {
		if r := applyCmd(t, f, at(t0+1, tc.cmd)[0]); codeOf(r.Err) != tc.code {
			t.Fatalf("%s: %v, want %s", tc.name, r.Err, tc.code)
		}
	}
	assertUnchanged(t, f, before)

	first := fileSig(t, key, signer, "batch file")
	mustApply(t, f, at(t0+2, signFiles(1, 0, false, first))[0])
	if f.Batches()[0].Signed {
		t.Fatal("signed before complete")
	}
	again := fileSig(t, key, signer, "batch file") // a new leader's: other bytes
	mustApply(t, f, at(t0+3, signFiles(1, 0, true, again, fileSig(t, key, signer, "roll-up")))[0])
	digest := sha256.Sum256([]byte("batch file"))
	if got := f.FileSignature(1, 0, digest[:], "310", "v1"); string(got) != string(first.GetSignature()) || !f.Batches()[0].Signed {
		t.Fatal("the first signature of the batch file is not the one kept, or the batch is not signed")
	}
	rollup := sha256.Sum256([]byte("roll-up"))
	if f.FileSignature(1, 0, rollup[:], "310", "v1") == nil {
		t.Fatal("the roll-up's signature is not kept")
	}
	mustApply(t, f, at(t0+4, signFiles(0, 1, false, fileSig(t, key, signer, "config 1")))[0])
	config := sha256.Sum256([]byte("config 1"))
	if f.FileSignature(0, 1, config[:], "310", "v1") == nil {
		t.Fatal("the configuration's signature is not kept")
	}
	// A configuration set with its signers takes signatures by them alone.
	signed := validAppConfig()
	signed.Signers = []*fsmpb.ExportSigner{signer}
	mustApply(t, f, at(t0+5, setAppConfig(signed))[0])
	if r := applyCmd(t, f, at(t0+6, signFiles(0, 2, false, fileSig(t, other, stranger, "config 2")))[0]); codeOf(r.Err) != command.CodeBadSignature {
		t.Fatalf("another key's signature of a configuration: %v", r.Err)
	}
	mustApply(t, f, at(t0+7, signFiles(0, 2, false, fileSig(t, key, signer, "config 2")))[0])
	restored := fsm.New()
	if err := restoreBytes(restored, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	if got := restored.FileSignature(1, 0, digest[:], "310", "v1"); string(got) != string(first.GetSignature()) || !restored.Batches()[0].Signed {
		t.Fatal("a restored state lost the signatures")
	}

	old := fsm.New()
	v7 := sealCmd(1, t0, 0, 0)
	v7.Seal.Signers = []*fsmpb.ExportSigner{signer}
	for _, c := range at(t0, putAuthority(haIssuer, "aud", []string{"app"}, akey("k1", 0, 0)), publishV2(1, 0, nil, dayKey(1, today-2))) {
		mustApply(t, old, c)
	}
	v7.Version = command.EndOfService - 1
	mustApply(t, old, v7)
	if fsm.Replicated(old.Batches()[0].Signers) {
		t.Fatal("a seal of version 7 kept a public key")
	}
}
