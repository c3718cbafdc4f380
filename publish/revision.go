package publish

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Revision tokens let an app revise its own earlier upload (for example
// likely to confirmed). The token is opaque to the app: an AES-256-GCM
// sealed list of the keys it may revise (key, start, period), padded to at
// least 28 entries so that its length does not tell how many keys were
// sent, as the reference server does.
const (
	tokenVersion    = 1
	tokenEntry      = 16 + 4 + 1
	tokenMinEntries = 28
	tokenAssociated = "covid-backend revision token v1"
	// TokenMaxKeys is the most keys one token covers: an app's keys of
	// the retention window over several uploads, with room to spare.
	TokenMaxKeys      = 128
	maxTokenCiphertxt = TokenMaxKeys * tokenEntry
)

// RevisableKey is a key an app may revise with its token.
type RevisableKey struct {
	Key    [16]byte
	Start  int32
	Period int32
}

// RevisionTokenKey derives the token key from a secret every node of the
// region shares (the admin token), so any node can open any node's tokens.
func RevisionTokenKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("covid-backend revision token key v1"))
	return m.Sum(nil)
}

// TokenKeys is what the token answered to an upload covers, as in the
// reference server: the keys of this upload and those of the token it came
// with whose validity has not ended before oldest (a rolling interval
// number), without repeats; newest first when they do not all fit.
func TokenKeys(previous, upload []RevisableKey, oldest int32) []RevisableKey {
	out := slices.Clone(upload)
	for _, k := range previous {
		if k.Start+k.Period >= oldest && !slices.ContainsFunc(out, func(o RevisableKey) bool { return o.Key == k.Key }) {
			out = append(out, k)
		}
	}
	slices.SortStableFunc(out, func(a, b RevisableKey) int { return cmp.Compare(b.Start, a.Start) })
	return out[:min(len(out), TokenMaxKeys)]
}

// SealRevisionToken makes a token over keys (at most TokenMaxKeys).
func SealRevisionToken(key []byte, keys []RevisableKey) (string, error) {
	if len(keys) > TokenMaxKeys {
		return "", fmt.Errorf("revision token: %d keys, at most %d", len(keys), TokenMaxKeys)
	}
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	plain := make([]byte, 0, max(len(keys), tokenMinEntries)*tokenEntry)
	for _, k := range keys {
		plain = append(plain, k.Key[:]...)
		plain = binary.BigEndian.AppendUint32(plain, uint32(k.Start))
		plain = append(plain, byte(k.Period))
	}
	for len(plain) < tokenMinEntries*tokenEntry {
		plain = append(plain, make([]byte, tokenEntry)...) // zero entries pad
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := append([]byte{tokenVersion}, nonce...)
	out = gcm.Seal(out, nonce, plain, []byte(tokenAssociated))
	return base64.StdEncoding.EncodeToString(out), nil
}

// OpenRevisionToken returns the keys a token lets its holder revise; a
// token that was not made with key, or was altered, is an error.
func OpenRevisionToken(key []byte, token string) ([]RevisableKey, error) {
	raw, err := DecodeBase64(token)
	if err != nil {
		return nil, errors.New("revision token is not base64")
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(raw) < 1+gcm.NonceSize() || raw[0] != tokenVersion || len(raw) > 1+gcm.NonceSize()+maxTokenCiphertxt+gcm.Overhead() {
		return nil, errors.New("revision token has the wrong form")
	}
	nonce, sealed := raw[1:1+gcm.NonceSize()], raw[1+gcm.NonceSize():]
	plain, err := gcm.Open(nil, nonce, sealed, []byte(tokenAssociated))
	if err != nil || len(plain)%tokenEntry != 0 {
		return nil, errors.New("revision token does not authenticate")
	}
	var out []RevisableKey
	for i := 0; i < len(plain); i += tokenEntry {
		var k RevisableKey
		copy(k.Key[:], plain[i:i+16])
		k.Start, k.Period = int32(binary.BigEndian.Uint32(plain[i+16:])), int32(plain[i+20])
		if k.Period != 0 {
			out = append(out, k)
		}
	}
	return out, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("revision token key: %w", err)
	}
	return cipher.NewGCM(block)
}

// DecoyRevisionToken is a token for a decoy (chaff) answer: sealed with a
// throwaway key, as long as the token a real answer to the same request
// would carry (the upload's keys, and the slots of the token it came with
// when that one was fuller than the padding), so that a network observer
// cannot tell decoys by size. It opens nowhere.
func DecoyRevisionToken(keys int, previous string) string {
	slots := keys
	if raw, err := DecodeBase64(previous); err == nil {
		if prev := (len(raw) - 1 - 12 - 16) / tokenEntry; prev > tokenMinEntries {
			slots = max(slots, prev)
		}
	}
	throwaway := make([]byte, 32)
	_, _ = rand.Read(throwaway) // crypto/rand never fails
	tok, _ := SealRevisionToken(throwaway, make([]RevisableKey, min(slots, TokenMaxKeys)))
	return tok
}
