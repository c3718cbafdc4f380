package efgs_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// signingCert is a country's self-signed signing certificate (the gateway
// allows self-signed ones), valid from now for a year, and its key.
func signingCert(t *testing.T, key crypto.Signer, country string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{country}, CommonName: "efgs signing " + country},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func someKeys(t *testing.T, n int) []*efgspb.DiagnosisKey {
	t.Helper()
	var keys []*efgspb.DiagnosisKey
	for _, v := range readVectors(t)[:n] {
		keys = append(keys, v.key)
	}
	return keys
}

// A batch signature verifies over the same keys in any order, and over
// nothing else: not a key changed, not a key left out, not at a time the
// certificate is not valid; it names its certificate.
func TestSignAndVerifyBatch(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := signingCert(t, key, "DE")
	keys := someKeys(t, 10)
	sig, err := efgs.SignBatch(keys, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(keys)
	slices.Reverse(reversed)
	got, err := efgs.VerifyBatch(reversed, sig, time.Now())
	if err != nil || efgs.Thumbprint(got) != efgs.Thumbprint(cert) {
		t.Fatalf("the keys in another order: %v", err)
	}
	changed := slices.Clone(keys)
	changed[3] = &efgspb.DiagnosisKey{KeyData: keys[3].GetKeyData(), RollingStartIntervalNumber: keys[3].GetRollingStartIntervalNumber() + 1,
		RollingPeriod: keys[3].GetRollingPeriod(), Origin: keys[3].GetOrigin(), ReportType: keys[3].GetReportType()}
	for name, tc := range map[string]struct {
		keys []*efgspb.DiagnosisKey
		sig  string
		at   time.Time
	}{
		"a key changed":          {changed, sig, time.Now()},
		"a key left out":         {keys[1:], sig, time.Now()},
		"after the certificate":  {keys, sig, time.Now().AddDate(2, 0, 0)},
		"not base64":             {keys, "not base64!", time.Now()},
		"base64 of no signature": {keys, base64.StdEncoding.EncodeToString([]byte("no CMS")), time.Now()},
	} {
		if _, err := efgs.VerifyBatch(tc.keys, tc.sig, tc.at); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if th := efgs.Thumbprint(cert); len(th) != 64 || strings.ToLower(th) != th {
		t.Errorf("thumbprint %q: want 64 lowercase hex digits", th)
	}
}

// Another CMS implementation agrees both ways (the gateway's own is
// BouncyCastle; OpenSSL stands in for it here): OpenSSL verifies our
// detached signature over the batch's bytes, and we verify OpenSSL's, of
// an EC and of an RSA-3072 key (the two the gateway admits).
func TestBatchSignatureAgainstOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not found (.ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	keys := someKeys(t, 25)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	batch := write("batch.bin", efgs.BatchBytes(keys))

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecCert := signingCert(t, ecKey, "NL")
	sig, err := efgs.SignBatch(keys, ecCert, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(sig)
	if out, err := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", write("ours.der", der),
		"-content", batch, "-noverify", "-out", os.DevNull).CombinedOutput(); err != nil {
		t.Fatalf("OpenSSL does not verify our signature: %v\n%s", err, out)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"EC P-256": ecKey, "RSA-3072": rsaKey} {
		cert := signingCert(t, key, "IT")
		pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
		certFile := write(name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		keyFile := write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
		out := filepath.Join(dir, name+".der")
		if msg, err := exec.Command(openssl, "cms", "-sign", "-binary", "-md", "sha256", "-signer", certFile, "-inkey", keyFile,
			"-outform", "DER", "-in", batch, "-out", out).CombinedOutput(); err != nil {
			t.Fatalf("%s: OpenSSL signs: %v\n%s", name, err, msg)
		}
		theirs, _ := os.ReadFile(out)
		got, err := efgs.VerifyBatch(keys, base64.StdEncoding.EncodeToString(theirs), time.Now())
		if err != nil || efgs.Thumbprint(got) != efgs.Thumbprint(cert) {
			t.Fatalf("%s: OpenSSL's signature: %v", name, err)
		}
		if _, err := efgs.VerifyBatch(keys[1:], base64.StdEncoding.EncodeToString(theirs), time.Now()); err == nil {
			t.Fatalf("%s: OpenSSL's signature verified over other keys", name)
		}
	}
}
