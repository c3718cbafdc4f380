package verify

import (
	"strings"
	"testing"
)

func TestParseLegacyCode(t *testing.T) {
	cases := []struct {
		in     string
		ok     bool
		text   string
		lookup uint32
	}{
		{"0000-0000-0000-0000-0001", true, "00000000000000000001", 0},
		{"zzzz zzzz zzzz zzzz zzzz", true, "ZZZZZZZZZZZZZZZZZZZZ", 1<<20 - 1},
		{"OIL0-0000-0000-0000-0000", true, "01100000000000000000", 1<<10 | 1<<5},
		{"0000-0000-0000-0000-000U", false, "", 0}, // U is not Crockford
		{"0000-0000-0000-0000", false, "", 0},      // too short
		{"eyJhbGciOiJFUzI1NiJ9.eyJ9.sig", false, "", 0},
	}
	for _, tc := range cases {
		c, err := ParseLegacyCode(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (c.Text != tc.text || c.Lookup != tc.lookup)) {
			t.Errorf("ParseLegacyCode(%q) = %+v, %v", tc.in, c, err)
		}
		if tc.ok && !LooksLikeCode(tc.in) {
			t.Errorf("LooksLikeCode(%q) is false for a code of the previous release", tc.in)
		}
		if back, err := ParseLegacyCode(strings.ToLower(c.Display())); tc.ok && (err != nil || back != c) {
			t.Errorf("parse(%q) = %+v, %v; want %+v", c.Display(), back, err, c)
		}
	}
}

// The hash depends on the key and the whole code.
func TestLegacyCodeHash(t *testing.T) {
	a, _ := ParseLegacyCode("ABCD-EFGH-JKMN-PQRS-TVWX")
	b, _ := ParseLegacyCode("ABCD-EFGH-JKMN-PQRS-TVWY")
	if a.Hash([]byte("k1")) == a.Hash([]byte("k2")) || a.Hash([]byte("k1")) == b.Hash([]byte("k1")) {
		t.Fatal("hash ignores the key or the code")
	}
}

// What an upload may carry as a code: short and long codes as issued and
// as people type them, and codes of the previous release; never a
// certificate.
func TestLooksLikeCode(t *testing.T) {
	long := NewLongCode(LongCodeLength)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{NewShortCode(ShortCodeDigits), true},
		{long, true},
		{GroupCode(long), true},
		{strings.ToUpper(GroupCode(long)), true},
		{" 1234 5678 ", true},
		{"ABCD-EFGH-JKMN-PQRS-TVWX", true},
		{"12345", false},
		{"abcd-efgh-ijkl-mnop-qrst-u", false},
		{"eyJhbGciOiJFUzI1NiJ9.eyJ9.sig", false},
		{"abcd_efgh", false},
		{"", false},
	} {
		if LooksLikeCode(tc.in) != tc.ok {
			t.Errorf("LooksLikeCode(%q) = %v, want %v", tc.in, !tc.ok, tc.ok)
		}
	}
	if g := GroupCode("abcdefghijklmnop"); g != "abcd-efgh-ijkl-mnop" || Normalize(g) != "abcdefghijklmnop" {
		t.Fatalf("GroupCode: %q", g)
	}
}
