package export

import (
	"testing"
	"time"
)

func TestFileName(t *testing.T) {
	start := time.Date(2020, 9, 13, 12, 0, 0, 0, time.UTC) // 1600000000
	end := start.Add(4 * time.Hour)
	for _, c := range []struct {
		root string
		n    int
		want string
	}{
		{"us", 1, "us/1599998400-1600012800-00001.zip"},
		{"exposureKeyExport-US", 12, "exposureKeyExport-US/1599998400-1600012800-00012.zip"},
		{"a/b/", 3, "a/b/1599998400-1600012800-00003.zip"},
		{"", 1, "1599998400-1600012800-00001.zip"},
		{"us", 123456, "us/1599998400-1600012800-123456.zip"},
	} {
		if got := FileName(c.root, start, end, c.n); got != c.want {
			t.Errorf("FileName(%q, %d) = %q, want %q", c.root, c.n, got, c.want)
		}
	}
	// The name depends on the instant only, not the time zone.
	if a, b := FileName("us", start, end, 1), FileName("us", start.In(time.FixedZone("X", 3600)), end, 1); a != b {
		t.Errorf("zone changed the name: %q vs %q", a, b)
	}
}
