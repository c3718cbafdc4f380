package verify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
)

// Code formats: short codes are read over the phone, long codes sent by SMS
// or in a link.
const (
	ShortCodeDigits = 8
	LongCodeLength  = 16
	longAlphabet    = "abcdefghijklmnopqrstuvwxyz0123456789"
	digits          = "0123456789"
	// minCodeLength and maxCodeLength bound what an upload may carry as a
	// code: short codes of 6 digits up to the 20 characters of codes
	// issued by the previous release's /v1/codes.
	minCodeLength = 6
	maxCodeLength = 20
)

// NewShortCode draws a short code of n decimal digits.
func NewShortCode(n int) string { return draw(digits, n) }

// NewLongCode draws a long code of n characters of [a-z0-9].
func NewLongCode(n int) string { return draw(longAlphabet, n) }

func draw(alphabet string, n int) string {
	var b strings.Builder
	max := big.NewInt(int64(len(alphabet)))
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("verify: the system random source failed: " + err.Error())
		}
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String()
}

// Normalize is a typed code as stored: spaces and dashes a person may add
// are dropped and letters lower-cased.
func Normalize(code string) string {
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(code)))
}

// GroupCode shows a code in groups of four, for reading aloud (Normalize
// drops the dashes again).
func GroupCode(code string) string {
	var parts []string
	for i := 0; i < len(code); i += 4 {
		parts = append(parts, code[i:min(i+4, len(code))])
	}
	return strings.Join(parts, "-")
}

// LooksLikeCode tells whether an upload's verificationPayload is a code as
// a person types it (a short or long code, or a code of the previous
// release), not a certificate: a JWT always has dots.
func LooksLikeCode(payload string) bool {
	n := Normalize(payload)
	if len(n) < minCodeLength || len(n) > maxCodeLength {
		return false
	}
	for _, r := range n {
		if !strings.ContainsRune(longAlphabet, r) {
			return false
		}
	}
	return true
}

// CodeKeyFromToken derives a code key from the admin token, for a region
// given no code key file: the key is never replicated, so a copy of the
// raft state alone does not reveal or confirm codes.
func CodeKeyFromToken(adminToken string) []byte {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("covid-backend one-time code key v1"))
	return m.Sum(nil)
}

// Hash is a code's keyed hash under one code key: only hashes are stored.
func Hash(key []byte, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("covid-backend verification code\x00"))
	m.Write([]byte(Normalize(code)))
	return m.Sum(nil)
}

// Hashes is a code's hash under every key in force (the first makes, all
// find), so that codes outlive a key rotation.
func Hashes(keys [][]byte, code string) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = Hash(k, code)
	}
	return out
}

// NewAPIKey draws a new API key and its SHA-256, the only form the region
// keeps (the key is shown once, to whoever made it).
func NewAPIKey() (key string, hash [32]byte) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic("verify: the system random source failed: " + err.Error())
	}
	key = base64.RawURLEncoding.EncodeToString(secret)
	return key, sha256.Sum256([]byte(key))
}

// DecodeNonce reads an app's nonce in any base64 alphabet, padded or not,
// as the reference server does (its own user-report client prints the
// URL-safe form).
func DecodeNonce(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("nonce: not base64")
}
