//go:build cgo

package hsm

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/miekg/pkcs11"
)

// PKCS#11 3.0's Edwards-curve names, which miekg/pkcs11 v1.1.2 lacks.
const (
	ckkECEdwards       = 0x40
	ckmEdwardsKeyGen   = 0x1055
	ckmEdDSA           = 0x1057
	ed25519PointLength = 32
)

// ed25519Params is CKA_EC_PARAMS for Ed25519: the DER of its OID
// 1.3.101.112 (RFC 8410).
var ed25519Params = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}

// edKey is an Ed25519 key pair in the token, through one PKCS#11 session
// (not safe for concurrent use, hence the lock). Ed25519 signatures are
// deterministic: every node that signs through the token gives the same
// bytes, as with the key in a file.
type edKey struct {
	mu      sync.Mutex
	p       *pkcs11.Ctx
	session pkcs11.SessionHandle
	private pkcs11.ObjectHandle
	public  ed25519.PublicKey
}

func (k *edKey) Public() crypto.PublicKey { return k.public }

func (k *edKey) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != 0 {
		return nil, errors.New("pkcs11: Ed25519 signs the message itself, not a digest")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.p.SignInit(k.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmEdDSA, nil)}, k.private); err != nil {
		return nil, fmt.Errorf("pkcs11: EdDSA: %w", err)
	}
	sig, err := k.p.Sign(k.session, message)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: EdDSA: %w", err)
	}
	return sig, nil
}

// Ed25519 is the Ed25519 key pair labelled label (crypto11 offers no
// EdDSA: this speaks PKCS#11 itself, CKM_EDDSA).
func (t *Token) Ed25519(label string) (crypto.Signer, error) {
	k, err := t.edSession()
	if err != nil {
		return nil, err
	}
	priv, err := k.find(pkcs11.CKO_PRIVATE_KEY, label)
	if err != nil {
		return nil, err
	}
	pub, err := k.find(pkcs11.CKO_PUBLIC_KEY, label)
	if err != nil {
		return nil, err
	}
	attrs, err := k.p.GetAttributeValue(k.session, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil || len(attrs) != 1 {
		return nil, fmt.Errorf("pkcs11: the public key of %q: %v", label, err)
	}
	point := attrs[0].Value // an OCTET STRING around the 32 bytes, or the bytes alone
	if len(point) == ed25519PointLength+2 && point[0] == 0x04 && point[1] == ed25519PointLength {
		point = point[2:]
	}
	if len(point) != ed25519PointLength {
		return nil, fmt.Errorf("pkcs11: %q is not an Ed25519 key", label)
	}
	k.private, k.public = priv, ed25519.PublicKey(point)
	probe := []byte("covid-backend: can this token sign with " + label)
	if sig, err := k.Sign(nil, probe, crypto.Hash(0)); err != nil || !ed25519.Verify(k.public, probe, sig) {
		return nil, fmt.Errorf("pkcs11: %q does not sign Ed25519 that its public key verifies (CKM_EDDSA): %v", label, err)
	}
	return k, nil
}

// GenerateEd25519 makes an Ed25519 key pair labelled label in the token.
func (t *Token) GenerateEd25519(label string) (crypto.Signer, error) {
	k, err := t.edSession()
	if err != nil {
		return nil, err
	}
	if taken, err := k.labelled(label); err != nil || taken {
		return nil, fmt.Errorf("pkcs11: a key labelled %q is in the token already (or the token cannot be searched: %v)", label, err)
	}
	public := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, ed25519Params)}
	private := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}
	if _, _, err := k.p.GenerateKeyPair(k.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmEdwardsKeyGen, nil)}, public, private); err != nil {
		return nil, fmt.Errorf("pkcs11: generate Ed25519 %q: %w", label, err)
	}
	return t.Ed25519(label)
}

// edSession opens a session of its own on the token, signed in, on the
// module crypto11 initialized (a closed token opens none: the module is
// finalized).
func (t *Token) edSession() (*edKey, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("pkcs11: the token is closed")
	}
	if t.raw == nil {
		p := pkcs11.New(t.cfg.Module)
		if p == nil {
			return nil, fmt.Errorf("pkcs11: cannot load %s", t.cfg.Module)
		}
		if err := p.Initialize(); !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			if err == nil {
				p.Finalize() // crypto11 had not: leave the module to it
			}
			return nil, errors.New("pkcs11: the token is closed")
		}
		t.raw, t.sessions = p, []pkcs11.SessionHandle{}
	}
	slots, err := t.raw.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: slots: %w", err)
	}
	for _, slot := range slots {
		info, err := t.raw.GetTokenInfo(slot)
		if err != nil || info.Label != t.cfg.Token {
			continue
		}
		session, err := t.raw.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: session: %w", err)
		}
		t.sessions = append(t.sessions, session)
		if err := t.raw.Login(session, pkcs11.CKU_USER, t.pin); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
			return nil, fmt.Errorf("pkcs11: sign in: %w", err)
		}
		return &edKey{p: t.raw, session: session}, nil
	}
	return nil, fmt.Errorf("pkcs11: no token labelled %q", t.cfg.Token)
}

// labelled tells whether any object of the token carries label.
func (k *edKey) labelled(label string) (bool, error) {
	if err := k.p.FindObjectsInit(k.session, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		return false, fmt.Errorf("pkcs11: find %q: %w", label, err)
	}
	found, _, err := k.p.FindObjects(k.session, 1)
	if ferr := k.p.FindObjectsFinal(k.session); err == nil {
		err = ferr
	}
	return len(found) > 0, err
}

// find is the one object of class labelled label.
func (k *edKey) find(class uint, label string) (pkcs11.ObjectHandle, error) {
	template := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}
	if err := k.p.FindObjectsInit(k.session, template); err != nil {
		return 0, fmt.Errorf("pkcs11: find %q: %w", label, err)
	}
	found, _, err := k.p.FindObjects(k.session, 2)
	if ferr := k.p.FindObjectsFinal(k.session); err == nil {
		err = ferr
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("pkcs11: find %q: %w", label, err)
	case len(found) != 1:
		return 0, fmt.Errorf("pkcs11: %d Ed25519 keys labelled %q in the token, want one", len(found), label)
	}
	return found[0], nil
}
