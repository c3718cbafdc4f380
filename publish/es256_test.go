package publish

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// opaque hides a key behind crypto.Signer, as an HSM's key is.
type opaque struct{ k *ecdsa.PrivateKey }

func (o opaque) Public() crypto.PublicKey { return &o.k.PublicKey }
func (o opaque) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.k.Sign(r, d, opts)
}

// A token signed through any crypto.Signer is a JWS golang-jwt verifies
// as ES256 (r and s of 32 bytes each, not ASN.1), however short r or s
// come out; a key that is not P-256 is refused.
func TestSignES256(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 { // about one in 128 signatures has an r or s under 32 bytes
		signing, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"i": i}).SigningString()
		if err != nil {
			t.Fatal(err)
		}
		token, err := SignES256(opaque{key}, signing)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"})); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := SignES256(opaque{other}, "a.b"); err == nil {
		t.Fatal("a P-384 key signed ES256")
	}
}
