package api

import (
	"strconv"
	"strings"
	"testing"
)

// Any delta cursor an app sends is a batch number that prints back the
// same, or is refused.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"0", "17", "4294967295", "4294967296", "-1", "", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCursor(s)
		if err != nil {
			return
		}
		if back, _ := strconv.ParseUint(s, 10, 32); uint32(back) != n {
			t.Fatalf("%q read as %d", s, n)
		}
	})
}

// Any Accept-Encoding a stranger sends is read without a panic, and gzip
// goes only to one that names it or "*".
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "br, gzip;q=0.5", "*", "gzip;q=0, *", "x-gzip;q=abc", ";;,,q=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lower := strings.ToLower(s)
		if acceptsGzip(s) && !strings.Contains(lower, "gzip") && !strings.Contains(lower, "*") {
			t.Fatalf("%q accepts gzip", s)
		}
	})
}
