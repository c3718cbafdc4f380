package padding

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	p := Plan{PerDay: 4200, Interval: 10 * time.Minute} // 144 seals a day: 29.2 keys a seal
	for _, tc := range []struct {
		name    string
		backlog int
		all     bool
		bucket  int
		lo, hi  int
	}{
		{"nothing waits", 0, false, 0, 21, 36},
		{"three batches' worth", 63, false, 0, 21, 36},
		{"more waits", 64, false, 1, 43, 72},
		{"a burst", 1000, false, 4, 350, 583},
		{"seal now takes all", 22, true, 1, 43, 72},
		{"seal now, one batch's worth", 21, true, 0, 21, 36},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := p.Bucket(tc.backlog, tc.all)
			lo, hi := p.Range(k)
			if k != tc.bucket || lo != tc.lo || hi != tc.hi {
				t.Fatalf("bucket %d (%d-%d keys), want %d (%d-%d)", k, lo, hi, tc.bucket, tc.lo, tc.hi)
			}
		})
	}
	// A tiny budget still makes batches of at least one key, and the
	// doubling stops.
	tiny := Plan{PerDay: 1, Interval: time.Second}
	if lo, hi := tiny.Range(0); lo != 1 || hi != 1 {
		t.Fatalf("tiny budget: %d-%d keys", lo, hi)
	}
	if k := tiny.Bucket(1<<40, false); k != maxBucket {
		t.Fatalf("huge backlog: bucket %d, want %d", k, maxBucket)
	}
	// A huge budget or backlog never makes a batch larger than MaxKeys.
	huge := Plan{PerDay: 100_000, Interval: 24 * time.Hour}
	k := huge.Bucket(1<<40, false)
	if lo, hi := huge.Range(k); k != 0 || hi != MaxKeys || lo != 75_000 {
		t.Fatalf("huge budget: bucket %d of %d-%d keys", k, lo, hi)
	}
}

// Sizes are drawn over the whole of the bucket's range and never outside.
func TestSizeCoversTheRange(t *testing.T) {
	p := Plan{PerDay: 4200, Interval: 10 * time.Minute}
	random := rand.NewChaCha8([32]byte{1})
	lo, hi := p.Range(0)
	seen := map[int]bool{}
	for range 10_000 {
		n, err := p.Size(random, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n < lo || n > hi {
			t.Fatalf("size %d outside %d-%d", n, lo, hi)
		}
		seen[n] = true
	}
	if len(seen) != hi-lo+1 {
		t.Fatalf("drew %d of the %d sizes of the range", len(seen), hi-lo+1)
	}
}
