// Package kstest is the two-sample Kolmogorov-Smirnov test the tests use to
// show that sizes a stranger sees (answers, export files) do not give away
// what they hide: whether an answer was a decoy, how many people uploaded.
package kstest

import (
	"math"
	"slices"
)

// Statistic is the largest distance between the empirical distribution
// functions of the samples a and b (which it leaves unchanged).
func Statistic(a, b []int) float64 {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	var i, j int
	var d float64
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] == x {
			i++
		}
		for j < len(b) && b[j] == x {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

// Critical is the statistic above which samples of n and m values differ
// at significance alpha (the asymptotic bound: c(alpha) = sqrt(-ln(alpha/2)/2)).
func Critical(n, m int, alpha float64) float64 {
	return math.Sqrt(-math.Log(alpha/2)/2) * math.Sqrt(float64(n+m)/float64(n*m))
}
