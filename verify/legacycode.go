package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
)

// Codes of the previous release's /v1/codes (command versions 1-4): 20
// Crockford base32 characters, the first four of which find the code in
// the state machine's table of them, stored as a keyed hash of the whole.
// No code of this kind is issued any more (/v1/codes issues verification
// codes); those issued before are redeemed until they expire, and the next
// release drops them.
const (
	legacyChars   = 20
	legacyGroup   = 4
	crockford     = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	legacyLookups = 4
)

// LegacyCode is a parsed code of the previous release.
type LegacyCode struct {
	// Text is the code in canonical form, without separators.
	Text string
	// Lookup is the value of the first group, which finds the code.
	Lookup uint32
}

// ParseLegacyCode reads a code as a person may type it: any case, with or
// without dashes and spaces, O for 0 and I or L for 1 (Crockford's rules).
func ParseLegacyCode(s string) (LegacyCode, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch r {
		case '-', ' ':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if !strings.ContainsRune(crockford, r) {
			return LegacyCode{}, errors.New("not a one-time code")
		}
		b.WriteRune(r)
	}
	text := b.String()
	if len(text) != legacyChars {
		return LegacyCode{}, errors.New("not a one-time code")
	}
	var lookup uint32
	for _, r := range text[:legacyLookups] {
		lookup = lookup<<5 | uint32(strings.IndexRune(crockford, r))
	}
	return LegacyCode{Text: text, Lookup: lookup}, nil
}

// Display is the code in groups of four, as it was read aloud.
func (c LegacyCode) Display() string {
	var parts []string
	for i := 0; i < len(c.Text); i += legacyGroup {
		parts = append(parts, c.Text[i:i+legacyGroup])
	}
	return strings.Join(parts, "-")
}

// Hash is the keyed hash under which the code is stored.
func (c LegacyCode) Hash(key []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(c.Text))
	return [32]byte(m.Sum(nil))
}
