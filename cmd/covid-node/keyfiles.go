package main

import (
	"crypto"
	"fmt"
	"os"
	"strings"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/hsm"
)

// pkcs11Prefix starts a signing key kept in the PKCS#11 token, by its
// label (RFC 7512's object attribute), where a PEM file may be named.
const pkcs11Prefix = "pkcs11:object="

// keyFiles opens the P-256 signing keys the flags name: PEM files, or
// pkcs11:object=LABEL for keys in the token, which it opens once for all
// of them (PKCS#11 signs a whole process in).
type keyFiles struct {
	token hsm.Config
	open  *hsm.Token
}

// load returns the key at path: an *ecdsa.PrivateKey from a PEM file, or
// the token's signer.
func (k *keyFiles) load(path string) (crypto.Signer, error) {
	label, inToken := strings.CutPrefix(path, pkcs11Prefix)
	if !inToken {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		key, err := export.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, nil
	}
	tok, err := k.tokenFor(path)
	if err != nil {
		return nil, err
	}
	signer, err := tok.Signer(label)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
}

// loadEd25519 is the Ed25519 key pkcs11:object=LABEL names in the token.
func (k *keyFiles) loadEd25519(path string) (crypto.Signer, error) {
	tok, err := k.tokenFor(path)
	if err != nil {
		return nil, err
	}
	signer, err := tok.Ed25519(strings.TrimPrefix(path, pkcs11Prefix))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
}

// tokenFor opens the token, once, for the key at path.
func (k *keyFiles) tokenFor(path string) (*hsm.Token, error) {
	if k.open == nil {
		tok, err := hsm.Open(k.token)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		k.open = tok
	}
	return k.open, nil
}
