package feed

import (
	"strconv"
	"testing"
)

// The cache holds at most its bound in bytes as well as in entries,
// evicting the oldest, and keeps nothing larger than the bound.
func TestCacheBytesBound(t *testing.T) {
	c := newCache(100, 1000, func(b []byte) int { return len(b) })
	builds := 0
	get := func(name string, n int) []byte {
		v, _ := c.get(name, func() ([]byte, error) { builds++; return make([]byte, n), nil })
		return v
	}
	for i := range 10 {
		get(strconv.Itoa(i), 300)
	}
	if c.bytes > 1000 || len(c.entries) != 3 {
		t.Fatalf("cache holds %d bytes in %d entries, want at most 1000 in 3", c.bytes, len(c.entries))
	}
	if _, ok := c.entries["9"]; !ok {
		t.Fatal("the newest entry was evicted")
	}
	before := builds
	if v := get("huge", 5000); len(v) != 5000 {
		t.Fatal("a result larger than the bound was not returned")
	}
	get("huge", 5000)
	if builds != before+2 || c.bytes > 1000 {
		t.Fatalf("a result larger than the bound was kept (builds %d, %d bytes)", builds-before, c.bytes)
	}
}
