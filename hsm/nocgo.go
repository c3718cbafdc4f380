//go:build !cgo

package hsm

import (
	"crypto"
	"errors"
)

// Supported tells whether this build can open PKCS#11 tokens.
const Supported = false

// ErrUnsupported: this build cannot load a PKCS#11 module.
var ErrUnsupported = errors.New("pkcs11: this build has no PKCS#11 support (built without cgo); build with CGO_ENABLED=1 (make build-hsm)")

// Token is an open PKCS#11 token; a build without cgo opens none.
type Token struct{}

// Open fails: this build cannot load a PKCS#11 module.
func Open(Config) (*Token, error) { return nil, ErrUnsupported }

// Signer fails.
func (*Token) Signer(string) (crypto.Signer, error) { return nil, ErrUnsupported }

// Generate fails.
func (*Token) Generate(string) (crypto.Signer, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Token) Close() error { return nil }

// Ed25519 fails.
func (*Token) Ed25519(string) (crypto.Signer, error) { return nil, ErrUnsupported }

// GenerateEd25519 fails.
func (*Token) GenerateEd25519(string) (crypto.Signer, error) { return nil, ErrUnsupported }
