package publish

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"strings"
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
	// An r of 31 bytes is padded to 32 (the JWS is r and s at fixed
	// width); an s of 33 bytes, or a negative one, is refused.
	for _, tc := range []struct {
		r, s   *big.Int
		refuse bool
	}{
		{new(big.Int).Lsh(big.NewInt(1), 247), big.NewInt(7), false},
		{big.NewInt(7), new(big.Int).Lsh(big.NewInt(1), 260), true},
		{big.NewInt(-7), big.NewInt(7), true},
	} {
		der, _ := asn1.Marshal(struct{ R, S *big.Int }{tc.r, tc.s})
		token, err := SignES256(fixed{pub: &key.PublicKey, der: der}, "a.b")
		if tc.refuse != (err != nil) {
			t.Fatalf("r %v s %v: %v", tc.r, tc.s, err)
		}
		if err == nil {
			sig, _ := base64.RawURLEncoding.DecodeString(token[strings.LastIndex(token, ".")+1:])
			if len(sig) != 64 || new(big.Int).SetBytes(sig[:32]).Cmp(tc.r) != 0 || new(big.Int).SetBytes(sig[32:]).Cmp(tc.s) != 0 {
				t.Fatalf("r %v s %v: the JWS signature %x", tc.r, tc.s, sig)
			}
		}
	}
}

// fixed answers every signature with der, as a faulty token might.
type fixed struct {
	pub *ecdsa.PublicKey
	der []byte
}

func (f fixed) Public() crypto.PublicKey                                  { return f.pub }
func (f fixed) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return f.der, nil }
