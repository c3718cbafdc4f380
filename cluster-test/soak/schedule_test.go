package soak

import (
	"testing"
	"time"
)

// The same seed draws the same faults; another seed others; a few hundred
// draws cover every kind, within the bounds the harness relies on.
func TestScheduleReplays(t *testing.T) {
	a, b, other := NewSchedule(42, 2), NewSchedule(42, 2), NewSchedule(43, 2)
	seen := map[FaultKind]int{}
	differ := false
	for range 400 {
		fa, fb, fo := a.Next(), b.Next(), other.Next()
		if fa != fb {
			t.Fatalf("seed 42 drew %+v and %+v", fa, fb)
		}
		differ = differ || fa != fo
		seen[fa.Kind]++
		if fa.For < time.Second || fa.For > 8*time.Second || fa.Rest < time.Second || fa.Rest > 4*time.Second || fa.Region < 0 || fa.Region > 1 {
			t.Fatalf("fault out of bounds: %+v", fa)
		}
		if (fa.Kind == ClockJump) != (fa.Offset != 0) || (fa.Kind == LinkDelay) != (fa.Delay != 0) {
			t.Fatalf("offset or delay on the wrong kind: %+v", fa)
		}
	}
	if !differ {
		t.Fatal("seeds 42 and 43 drew the same faults")
	}
	for _, k := range Kinds {
		if seen[k] == 0 {
			t.Errorf("400 draws never gave %q", k)
		}
	}
	one := NewSchedule(7, 1)
	for range 200 {
		if f := one.Next(); f.Kind == PartitionRegions || f.Region != 0 {
			t.Fatalf("a single region drew %+v", f)
		}
	}
}
