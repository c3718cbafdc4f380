//go:build cgo

package hsm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
	"github.com/covid-backend/covid-backend/hsm"
	"github.com/covid-backend/covid-backend/hsm/hsmtest"
)

// A key made in the token signs digests that its public key verifies,
// with other bytes each time (so a region cannot have each node sign),
// and is found again by its label in a new session; a wrong label or PIN
// is a clear error.
func TestSoftHSMKey(t *testing.T) {
	cfg := hsmtest.SoftHSM(t)
	tok, err := hsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Generate("export-310"); err != nil {
		t.Fatal(err)
	}
	tok.Close()
	tok, err = hsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tok.Signer("export-310")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("export.bin"))
	a, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	pub := key.Public().(*ecdsa.PublicKey)
	if pub.Curve != elliptic.P256() || !ecdsa.VerifyASN1(pub, digest[:], a) || !ecdsa.VerifyASN1(pub, digest[:], b) || string(a) == string(b) {
		t.Fatal("the token's signatures do not verify, or are deterministic")
	}
	if _, err := tok.Signer("no-such-key"); err == nil {
		t.Fatal("a key that is not there was found")
	}
	if _, err := tok.Generate("export-310"); err == nil {
		t.Fatal("a second key under one label was made")
	}
	tok.Close() // PKCS#11 signs in a whole process: a wrong PIN is seen with no session open
	bad := cfg
	bad.PinFile = filepath.Join(t.TempDir(), "wrong-pin")
	os.WriteFile(bad.PinFile, []byte("0000"), 0o600)
	if _, err := hsm.Open(bad); err == nil {
		t.Fatal("a wrong PIN opened the token")
	}
}

// BenchmarkSignSoftHSM is what an export file's signature costs through
// PKCS#11 (SoftHSM2), beside BenchmarkSignPEM, the same signature with the
// key in memory.
func BenchmarkSignSoftHSM(b *testing.B) {
	tok, err := hsm.Open(hsmtest.SoftHSM(b))
	if err != nil {
		b.Fatal(err)
	}
	defer tok.Close()
	key, err := tok.Generate("bench")
	if err != nil {
		b.Fatal(err)
	}
	benchSign(b, key)
}

// BenchmarkSignPEM signs as a node with a PEM export key does.
func BenchmarkSignPEM(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	benchSign(b, key)
}

func benchSign(b *testing.B, key crypto.Signer) {
	digest := sha256.Sum256([]byte("export.bin"))
	for b.Loop() {
		if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// A country's EFGS batch signature made with its signing key in the token
// is CMS the gateway's check (efgs.VerifyBatch) takes, naming the
// certificate the token's key belongs to.
func TestEFGSBatchSignedInTheToken(t *testing.T) {
	tok, err := hsm.Open(hsmtest.SoftHSM(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	key, err := tok.Generate("efgs-sign")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "DE signing", Country: []string{"DE"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keys := []*efgspb.DiagnosisKey{{KeyData: make([]byte, 16), RollingStartIntervalNumber: 2_900_000, RollingPeriod: 144, Origin: "DE", VisitedCountries: []string{"DE"}}}
	sig, err := efgs.SignBatch(keys, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := efgs.VerifyBatch(keys, sig, now)
	if err != nil || !signer.Equal(cert) {
		t.Fatalf("the gateway's check: %v", err)
	}
}

// An Ed25519 key in the token (the federation signing key) signs as the
// same key in a file would: deterministically, the same bytes each time
// (so every node signs a batch alike), verified by its public key; it is
// found again by label, and a second key under the label is refused.
func TestSoftHSMEd25519(t *testing.T) {
	tok, err := hsm.Open(hsmtest.SoftHSM(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	made, err := tok.GenerateEd25519("federation")
	if err != nil {
		t.Fatal(err)
	}
	key, err := tok.Ed25519("federation")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("a federation batch body")
	a, err := key.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := made.Sign(nil, msg, crypto.Hash(0))
	pub := key.Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, msg, a) || string(a) != string(b) {
		t.Fatal("the token's Ed25519 signatures do not verify, or differ")
	}
	if _, err := tok.GenerateEd25519("federation"); err == nil {
		t.Fatal("a second key under one label was made")
	}
	if _, err := tok.Generate("export-310"); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.GenerateEd25519("export-310"); err == nil {
		t.Fatal("an Ed25519 key was made under a P-256 key's label")
	}
	if _, err := tok.Signer("export-310"); err != nil {
		t.Fatalf("the P-256 key after a refused Ed25519 one: %v", err)
	}
	tok.Close()
	if _, err := tok.Ed25519("federation"); err == nil {
		t.Fatal("a closed token found a key")
	}
}
