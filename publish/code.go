package publish

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"
)

// One-time codes: what a health care provider hands a patient instead of a
// verification certificate, typed into the app and sent as
// verificationPayload. A code is 20 Crockford base32 characters (100 bits),
// shown in five groups of four for reading aloud. The first group (20 bits)
// finds the code; the whole code is checked against a keyed hash, so the
// secret part has 80 bits of entropy.
const (
	codeChars     = 20
	codeGroup     = 4
	crockford     = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	lookupChars   = 4
	lookupBitsLen = 5 * lookupChars
)

// Code is a parsed one-time code.
type Code struct {
	// Text is the code in canonical form, without separators.
	Text string
	// Lookup is the value of the first group, which finds the code.
	Lookup uint32
}

// NewCode draws a random code.
func NewCode() (Code, error) {
	b := make([]byte, codeChars)
	if _, err := rand.Read(b); err != nil {
		return Code{}, err
	}
	for i := range b {
		b[i] = crockford[b[i]&31]
	}
	return ParseCode(string(b))
}

// ParseCode reads a code as a person may type it: any case, with or without
// dashes and spaces, O for 0 and I or L for 1 (Crockford's rules).
func ParseCode(s string) (Code, error) {
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
			return Code{}, errors.New("not a one-time code")
		}
		b.WriteRune(r)
	}
	text := b.String()
	if len(text) != codeChars {
		return Code{}, errors.New("not a one-time code")
	}
	var lookup uint32
	for _, r := range text[:lookupChars] {
		lookup = lookup<<5 | uint32(strings.IndexRune(crockford, r))
	}
	return Code{Text: text, Lookup: lookup}, nil
}

// IsCode reports whether a verificationPayload is a one-time code rather
// than a certificate (a JWT has dots; a code never does).
func IsCode(payload string) bool {
	_, err := ParseCode(payload)
	return err == nil
}

// Display is the code in groups of four, for reading aloud.
func (c Code) Display() string {
	var parts []string
	for i := 0; i < len(c.Text); i += codeGroup {
		parts = append(parts, c.Text[i:i+codeGroup])
	}
	return strings.Join(parts, "-")
}

// Hash is the keyed hash under which the code is stored; without the key a
// stolen copy of the state does not reveal codes.
func (c Code) Hash(key []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(c.Text))
	return [32]byte(m.Sum(nil))
}

// CodeGrant is what an issued code authorizes: the report type and the
// symptom onset the provider recorded.
type CodeGrant struct {
	ReportType           string
	SymptomOnsetInterval uint32
}

// ValidateWithCode checks an upload authorized by a one-time code: the
// code itself is checked and consumed by the state machine; here the keys
// get the same rules as with a certificate, under the code's grant.
func ValidateWithCode(req *Request, grant CodeGrant, now time.Time) (*Verified, error) {
	if req == nil {
		return nil, badRequest(http.StatusBadRequest, errors.New("missing publish request"), nil)
	}
	if !validReportType(grant.ReportType) {
		return nil, &Error{Status: http.StatusInternalServerError, Code: CodeInternalError, Message: "code grants an unknown report type"}
	}
	return verifyKeys(req, grant.ReportType, grant.SymptomOnsetInterval, now)
}
