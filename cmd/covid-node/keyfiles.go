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
	if k.open == nil {
		tok, err := hsm.Open(k.token)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		k.open = tok
	}
	signer, err := k.open.Signer(label)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
}
