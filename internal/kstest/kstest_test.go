package kstest

import (
	"math"
	"testing"
)

func TestStatistic(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []int
		want float64
	}{
		{"same", []int{1, 2, 3}, []int{3, 2, 1}, 0},
		{"apart", []int{1, 2}, []int{5, 6}, 1},
		{"half", []int{1, 2, 3, 4}, []int{3, 4, 5, 6}, 0.5},
	} {
		if got := Statistic(tc.a, tc.b); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// The tables' values: c(0.05) = 1.358, c(0.01) = 1.628, c(1e-4) = 2.225.
	for alpha, c := range map[float64]float64{0.05: 1.358, 0.01: 1.628, 1e-4: 2.225} {
		if got := Critical(100, 100, alpha) / math.Sqrt(0.02); math.Abs(got-c) > 0.002 {
			t.Errorf("c(%v) = %.4f, want %.3f", alpha, got, c)
		}
	}
}
