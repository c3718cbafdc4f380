package account

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// sealMark starts a sealed TOTP secret; a secret without it is one the
// previous release stored in clear (base32 text never starts with a zero
// byte).
var sealMark = []byte("\x00totp1")

// totpKey derives the key that seals second-factor secrets from a code key,
// which every node of the region holds and the replicated state does not.
func totpKey(codeKey []byte) []byte {
	m := hmac.New(sha256.New, codeKey)
	m.Write([]byte("covid-backend totp secrets v1"))
	return m.Sum(nil)
}

func totpAEAD(codeKey []byte) cipher.AEAD {
	block, err := aes.NewCipher(totpKey(codeKey))
	if err != nil {
		panic("account: a 32-byte key: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("account: GCM: " + err.Error())
	}
	return aead
}

// SealTOTP seals an account's TOTP secret for the replicated state:
// AES-256-GCM under a key derived from the region's first code key, bound
// to the account's email, so that a snapshot, a raft log or a backup alone
// holds no second factor, and a sealed secret moved to another account
// does not open.
func SealTOTP(codeKey []byte, email, secret string) []byte {
	aead := totpAEAD(codeKey)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce) // never fails (crypto/rand aborts the program instead)
	out := append(bytes.Clone(sealMark), nonce...)
	return aead.Seal(out, nonce, []byte(secret), []byte(email))
}

// OpenTOTP opens a stored TOTP secret with any of the region's code keys
// (so that secrets outlive a key rotation); a secret stored in clear by
// the previous release is returned as it is.
func OpenTOTP(codeKeys [][]byte, email string, stored []byte) (string, error) {
	if !TOTPSealed(stored) {
		return string(stored), nil
	}
	body := stored[len(sealMark):]
	for _, k := range codeKeys {
		aead := totpAEAD(k)
		if len(body) < aead.NonceSize() {
			break
		}
		if secret, err := aead.Open(nil, body[:aead.NonceSize()], body[aead.NonceSize():], []byte(email)); err == nil {
			return string(secret), nil
		}
	}
	return "", errors.New("the second factor's secret does not open with this region's code keys")
}

// TOTPSealed tells whether a stored TOTP secret is sealed.
func TOTPSealed(stored []byte) bool { return bytes.HasPrefix(stored, sealMark) }
