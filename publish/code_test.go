package publish

import (
	"strings"
	"testing"
)

func TestNewCodeRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.Text] {
			t.Fatal("duplicate code")
		}
		seen[c.Text] = true
		back, err := ParseCode(strings.ToLower(c.Display()))
		if err != nil || back != c {
			t.Fatalf("parse(%q) = %+v, %v; want %+v", c.Display(), back, err, c)
		}
		if c.Lookup >= 1<<lookupBitsLen {
			t.Fatalf("lookup %d exceeds 20 bits", c.Lookup)
		}
	}
}

func TestParseCode(t *testing.T) {
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
		c, err := ParseCode(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (c.Text != tc.text || c.Lookup != tc.lookup)) {
			t.Errorf("ParseCode(%q) = %+v, %v", tc.in, c, err)
		}
		if IsCode(tc.in) != tc.ok {
			t.Errorf("IsCode(%q) != %v", tc.in, tc.ok)
		}
	}
}

// The hash depends on the key and the whole code.
func TestCodeHash(t *testing.T) {
	a, _ := ParseCode("ABCD-EFGH-JKMN-PQRS-TVWX")
	b, _ := ParseCode("ABCD-EFGH-JKMN-PQRS-TVWY")
	if a.Hash([]byte("k1")) == a.Hash([]byte("k2")) || a.Hash([]byte("k1")) == b.Hash([]byte("k1")) {
		t.Fatal("hash ignores the key or the code")
	}
}
