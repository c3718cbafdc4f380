package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// FuzzParseToken: whatever a stranger sends as a token is refused with
// token_invalid or names a token id; it never panics.
func FuzzParseToken(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	key := SigningKey{Kid: "t1", Private: k}
	now := time.Unix(1_800_000_000, 0)
	good, _ := SignToken(key, "iss", TokenClaims{ID: "id"}, now)
	for _, s := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, e := ParseToken(raw, []SigningKey{key}, "iss", now)
		if (e == nil) == (id == "") || e != nil && e.Code != CodeTokenInvalid {
			t.Fatalf("ParseToken(%q) = %q, %v", raw, id, e)
		}
	})
}

// Any text sent as a code of the previous release parses to a code that
// prints back the same way, or is refused.
func FuzzParseLegacyCode(f *testing.F) {
	for _, s := range []string{"ABCD-EFGH-JKMN-PQRS-TVWX", "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ", "oil0 0000 0000 0000 0000", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := ParseLegacyCode(s)
		if err != nil {
			return
		}
		again, err := ParseLegacyCode(code.Display())
		if err != nil || again != code {
			t.Fatalf("%q parsed as %+v, whose display %q parses as %+v (%v)", s, code, code.Display(), again, err)
		}
	})
}

// FuzzPhones: a phone number is whatever a device or a worker sends; it is
// accepted in E.164 (which checks again to itself) or refused as
// phone_number_invalid, and never panics.
func FuzzPhones(f *testing.F) {
	p := Phones{Region: "NL", Allowed: []string{"NL", "BE"}}
	for _, s := range []string{"0612345678", "+31 6 12345678", "+32 470 12 34 56", "+1 202 555 0143", "06-1234", "+999", "", "++31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e164, verr := p.Check(raw)
		if verr != nil {
			if verr.Code != CodePhoneInvalid || verr.Status != 400 {
				t.Fatalf("%q: refused with %d %s", raw, verr.Status, verr.Code)
			}
			return
		}
		if !strings.HasPrefix(e164, "+") || len(e164) > 16 {
			t.Fatalf("%q: accepted as %q, not E.164", raw, e164)
		}
		if again, verr := p.Check(e164); verr != nil || again != e164 {
			t.Fatalf("%q: %q checks again as %q, %v", raw, e164, again, verr)
		}
	})
}
