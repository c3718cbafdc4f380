// Package sealed keeps secrets that the replicated state must hold but a
// snapshot, a raft log or a backup alone must not reveal (second-factor
// secrets, a bulk run's codes until they are used): AES-256-GCM under a
// key derived from the region's code key, which every node holds and the
// state does not, bound to what the secret belongs to, so that a sealed
// secret moved to another record does not open.
package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// Box is one kind of sealed secret: its mark, which starts every sealed
// value (so that a value stored in clear by an earlier release is told
// apart), and its purpose, from which its key is derived.
type Box struct {
	Mark    string
	Purpose string
}

// ErrNotOpened says that no code key of the region opens a sealed value.
var ErrNotOpened = errors.New("the sealed value does not open with this region's code keys")

func (b Box) aead(codeKey []byte) cipher.AEAD {
	m := hmac.New(sha256.New, codeKey)
	m.Write([]byte(b.Purpose))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic("sealed: a 32-byte key: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("sealed: GCM: " + err.Error())
	}
	return aead
}

// Seal seals secret under codeKey, bound to owner.
func (b Box) Seal(codeKey []byte, owner string, secret []byte) []byte {
	aead := b.aead(codeKey)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce) // never fails (crypto/rand aborts the program instead)
	out := append([]byte(b.Mark), nonce...)
	return aead.Seal(out, nonce, secret, []byte(owner))
}

// Open opens a sealed value with any of the region's code keys (so that
// values outlive a key rotation).
func (b Box) Open(codeKeys [][]byte, owner string, stored []byte) ([]byte, error) {
	if !b.Sealed(stored) {
		return nil, ErrNotOpened
	}
	body := stored[len(b.Mark):]
	for _, k := range codeKeys {
		aead := b.aead(k)
		if len(body) < aead.NonceSize() {
			break
		}
		if secret, err := aead.Open(nil, body[:aead.NonceSize()], body[aead.NonceSize():], []byte(owner)); err == nil {
			return secret, nil
		}
	}
	return nil, ErrNotOpened
}

// Sealed tells whether a stored value is sealed in this box.
func (b Box) Sealed(stored []byte) bool { return bytes.HasPrefix(stored, []byte(b.Mark)) }
