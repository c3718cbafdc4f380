package export

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParsePublicKeyPEM reads a PKIX "PUBLIC KEY" PEM block holding a P-256 key,
// the form in which health authorities and the reference publish export
// verification keys.
func ParsePublicKeyPEM(data []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("export: no PUBLIC KEY PEM block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("export: public key: %w", err)
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("export: public key is %T, want ECDSA P-256", key)
	}
	return pub, nil
}

// ParsePrivateKeyPEM reads a P-256 signing key from PEM, either PKCS #8
// ("PRIVATE KEY", what Go and most KMS exports write) or SEC 1
// ("EC PRIVATE KEY", what `openssl ecparam -genkey` writes, possibly after an
// "EC PARAMETERS" block, which is skipped).
func ParsePrivateKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("export: no PRIVATE KEY or EC PRIVATE KEY PEM block")
		}
		var key any
		var err error
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("export: PEM block %q is not a private key", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("export: private key: %w", err)
		}
		priv, ok := key.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("export: private key is %T, want ECDSA P-256", key)
		}
		return priv, nil
	}
}
