//go:build cgo

// Package hsm opens signing keys kept in a PKCS#11 token (a hardware
// security module, or SoftHSM2 in tests) through crypto11: a key there is
// a crypto.Signer whose private half never leaves the token. PKCS#11
// modules are shared libraries, so this needs a build with cgo; a build
// without it (the static binary of the container image) says so.
package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Supported tells whether this build can open PKCS#11 tokens.
const Supported = true

// Token is an open PKCS#11 token.
type Token struct {
	ctx *crypto11.Context
	cfg Config
	pin string
	// raw speaks PKCS#11 itself for Ed25519 (ed25519.go), on the module
	// crypto11 initialized; its sessions close with the token.
	mu       sync.Mutex
	raw      *pkcs11.Ctx
	sessions []pkcs11.SessionHandle
	closed   bool
}

// Open opens the token labelled cfg.Token through the module, signing in
// with the PIN in cfg.PinFile.
func Open(cfg Config) (*Token, error) {
	if cfg.Module == "" || cfg.Token == "" || cfg.PinFile == "" {
		return nil, errors.New("pkcs11: the module, the token label and the PIN file are all needed")
	}
	pin, err := os.ReadFile(cfg.PinFile)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: PIN: %w", err)
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.Token, Pin: strings.TrimSpace(string(pin))})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: open token %q with %s: %w", cfg.Token, cfg.Module, err)
	}
	return &Token{ctx: ctx, cfg: cfg, pin: strings.TrimSpace(string(pin))}, nil
}

// Signer is the P-256 key pair labelled label; several under one label
// are refused (which one signs would be chance).
func (t *Token) Signer(label string) (crypto.Signer, error) {
	all, err := t.ctx.FindKeyPairs(nil, []byte(label))
	switch {
	case err != nil || len(all) == 0:
		return nil, fmt.Errorf("pkcs11: no key pair labelled %q in the token: %v", label, err)
	case len(all) > 1:
		return nil, fmt.Errorf("pkcs11: %d key pairs labelled %q in the token: label one only so", len(all), label)
	}
	s := all[0]
	if pub, ok := s.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pkcs11: key %q is not an ECDSA P-256 key", label)
	}
	return s, nil
}

// Generate makes a P-256 key pair labelled label in the token (for
// SoftHSM2 and tests; an HSM's own tools make keys in production).
func (t *Token) Generate(label string) (crypto.Signer, error) {
	if have, err := t.ctx.FindKeyPairs(nil, []byte(label)); err != nil || len(have) > 0 {
		return nil, fmt.Errorf("pkcs11: a key pair labelled %q is in the token already (or the token cannot be searched: %v)", label, err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	s, err := t.ctx.GenerateECDSAKeyPairWithLabel(id, []byte(label), elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate %q: %w", label, err)
	}
	return s, nil
}

// Close closes the token, once: its Ed25519 sessions, then crypto11's
// (which finalizes the module).
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	for _, s := range t.sessions {
		t.raw.CloseSession(s)
	}
	t.closed, t.sessions, t.raw = true, nil, nil
	return t.ctx.Close()
}
