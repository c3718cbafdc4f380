package efgs_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// country is a country at the gateway: its signing key and certificate,
// the certificate's PEM text and the trust anchor's signature over it.
type country struct {
	code string
	key  crypto.Signer
	cert *x509.Certificate
	pem  []byte
	ta   string
}

func newCountry(t *testing.T, code string, anchor crypto.Signer) country {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := signingCert(t, key, code)
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	ta, err := efgs.AnchorSign(anchor, p)
	if err != nil {
		t.Fatal(err)
	}
	return country{code, key, cert, p, ta}
}

// entry is the audit entry of an upload of c's keys.
func (c country) entry(t *testing.T, keys []*efgspb.DiagnosisKey) efgs.AuditEntry {
	t.Helper()
	sig, err := efgs.SignBatch(keys, c.cert, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return efgs.AuditEntry{Country: c.code, SigningCertificate: string(c.pem), UploaderSigningThumbprint: efgs.Thumbprint(c.cert),
		SigningCertificateOperatorSignature: c.ta, Amount: len(keys), BatchSignature: sig}
}

// A download batch holds DE's and NL's uploads (FR's own are left out of
// it but listed in the audit): both verify and are kept; NL's batch with a
// key changed in transit, or with a certificate the anchor did not sign,
// is rejected alone; an audit that does not add up refuses everything.
func TestVerifyDownload(t *testing.T) {
	now := time.Now()
	anchorKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	anchor := signingCert(t, anchorKey, "EU")
	de, nl, fr := newCountry(t, "DE", anchorKey), newCountry(t, "NL", anchorKey), newCountry(t, "FR", anchorKey)
	deKeys, nlKeys, frKeys := freshKeys(5, "DE", now), freshKeys(7, "NL", now), freshKeys(3, "FR", now)
	audit := []efgs.AuditEntry{de.entry(t, deKeys), fr.entry(t, frKeys), nl.entry(t, nlKeys)}
	download := append(append([]*efgspb.DiagnosisKey{}, deKeys...), nlKeys...)

	kept, rejected, err := efgs.VerifyDownload(download, audit, anchor, "FR", now)
	if err != nil || len(kept) != 12 || len(rejected) != 0 {
		t.Fatalf("a good download: %d kept, %v rejected, %v", len(kept), rejected, err)
	}
	tampered := append([]*efgspb.DiagnosisKey{}, download...)
	changed := proto.CloneOf(nlKeys[2])
	changed.TransmissionRiskLevel = 8
	tampered[5+2] = changed
	kept, rejected, err = efgs.VerifyDownload(tampered, audit, anchor, "FR", now)
	if err != nil || len(kept) != 5 || len(rejected) != 1 || rejected[0].Country != "NL" {
		t.Fatalf("NL's batch changed in transit: %d kept, %v rejected, %v", len(kept), rejected, err)
	}
	otherAnchor, _ := rsa.GenerateKey(rand.Reader, 2048)
	rogue := newCountry(t, "NL", otherAnchor)
	kept, rejected, err = efgs.VerifyDownload(download, []efgs.AuditEntry{audit[0], audit[1], rogue.entry(t, nlKeys)}, anchor, "FR", now)
	if err != nil || len(kept) != 5 || len(rejected) != 1 || !strings.Contains(rejected[0].Reason.Error(), "trust anchor") {
		t.Fatalf("a certificate the anchor did not sign: %d kept, %v rejected, %v", len(kept), rejected, err)
	}
	short := append([]efgs.AuditEntry{}, audit...)
	short[2].Amount = 6
	if _, _, err := efgs.VerifyDownload(download, short, anchor, "FR", now); err == nil {
		t.Fatal("an audit that does not add up was taken")
	}
}

// The trust anchor's signature is what the gateway's operators made with
// OpenSSL over the certificate's PEM file: ours verifies with OpenSSL, and
// OpenSSL's with ours.
func TestAnchorSignatureAgainstOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not found (.ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor := signingCert(t, anchorKey, "EU")
	c := newCountry(t, "DE", anchorKey)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(anchorKey)
	keyFile := write("ta.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	pubDER, _ := x509.MarshalPKIXPublicKey(anchorKey.Public())
	pubFile := write("ta.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	certFile := write("cert.pem", c.pem)
	sig, err := exec.Command(openssl, "dgst", "-sha256", "-sign", keyFile, certFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := efgs.AnchorSigned(anchor, c.pem, encode(sig)); err != nil {
		t.Fatalf("OpenSSL's signature: %v", err)
	}
	ours := write("ours.sig", decode(t, c.ta))
	if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pubFile, "-signature", ours, certFile).CombinedOutput(); err != nil {
		t.Fatalf("OpenSSL does not verify our signature: %v\n%s", err, out)
	}
}

func encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
