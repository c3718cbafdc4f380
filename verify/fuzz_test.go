package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
