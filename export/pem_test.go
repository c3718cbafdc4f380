package export

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Keys loaded from PEM sign exports that verify with the PEM public key,
// whichever private key encoding the operator has.
func TestPEMKeysSignAndVerify(t *testing.T) {
	priv := newKey(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// `openssl ecparam -name prime256v1 -genkey` output: parameters first.
	params := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
	pub, err := ParsePublicKeyPEM(pemBlock("PUBLIC KEY", pkix))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pem  []byte
	}{
		{"PKCS #8", pemBlock("PRIVATE KEY", pkcs8)},
		{"SEC 1", pemBlock("EC PRIVATE KEY", sec1)},
		{"SEC 1 after EC PARAMETERS", append(params, pemBlock("EC PRIVATE KEY", sec1)...)},
	} {
		got, err := ParsePrivateKeyPEM(c.pem)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !got.Equal(priv) {
			t.Fatalf("%s: parsed a different key", c.name)
		}
		raw, err := Encode(sampleFile(), []SigningKey{{Private: got, KeyID: "228", KeyVersion: "v1"}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Verify(pub, "228", "v1"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

func TestPEMRejects(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384PKCS8, _ := x509.MarshalPKCS8PrivateKey(p384)
	p384PKIX, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(edPriv)
	edPKIX, _ := x509.MarshalPKIXPublicKey(edPub)
	golden := readGolden(t, "export-key-310-v1.pub.pem")

	for _, c := range []struct {
		name string
		pem  []byte
	}{
		{"empty", nil},
		{"not PEM", []byte("hello")},
		{"public key", golden},
		{"P-384", pemBlock("PRIVATE KEY", p384PKCS8)},
		{"Ed25519", pemBlock("PRIVATE KEY", edPKCS8)},
		{"garbage DER", pemBlock("EC PRIVATE KEY", []byte{1, 2, 3})},
		{"only parameters", []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")},
	} {
		if k, err := ParsePrivateKeyPEM(c.pem); err == nil {
			t.Errorf("ParsePrivateKeyPEM(%s) = %v, want error", c.name, k)
		}
	}
	for _, c := range []struct {
		name string
		pem  []byte
	}{
		{"empty", nil},
		{"private key", pemBlock("PRIVATE KEY", p384PKCS8)},
		{"P-384", pemBlock("PUBLIC KEY", p384PKIX)},
		{"Ed25519", pemBlock("PUBLIC KEY", edPKIX)},
		{"garbage DER", pemBlock("PUBLIC KEY", []byte{1, 2, 3})},
	} {
		if k, err := ParsePublicKeyPEM(c.pem); err == nil {
			t.Errorf("ParsePublicKeyPEM(%s) = %v, want error", c.name, k)
		}
	}
}
