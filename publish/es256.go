package publish

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// SignES256 signs a JWT's signing string (header.payload) with an ECDSA
// P-256 key, which may be kept in an HSM (any crypto.Signer): the JWS
// signature is the SHA-256 digest's r and s, 32 bytes each (RFC 7518
// 3.4), not the ASN.1 a crypto.Signer gives. It returns the whole token.
func SignES256(key crypto.Signer, signing string) (string, error) {
	if pub, ok := key.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return "", errors.New("ES256 needs an ECDSA P-256 key")
	}
	digest := sha256.Sum256([]byte(signing))
	der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("ES256: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
		return "", fmt.Errorf("ES256: the key's signature is not ASN.1 (r, s): %v", err)
	}
	for _, v := range []*big.Int{rs.R, rs.S} {
		if v.Sign() <= 0 || v.BitLen() > 256 {
			return "", errors.New("ES256: the key's signature has an r or s out of P-256's range")
		}
	}
	sig := make([]byte, 64)
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
