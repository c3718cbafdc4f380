package clustertest

import (
	"slices"
	"testing"
	"time"
)

// efgsBenchRounds is how many uploads BenchmarkEFGSHub times.
const efgsBenchRounds = 10

// BenchmarkEFGSHub measures an exchange through the stand-in gateway (a
// hub region of three nodes): from DE's upload of 14 keys acknowledged to
// FR holding all of them, where DE seals and uploads to the hub every
// second and FR downloads when the hub calls it back; p50 and p99 (of 10
// rounds: the slowest).
func BenchmarkEFGSHub(b *testing.B) {
	x := newHubExchange(b, 0)
	var took []time.Duration
	for range efgsBenchRounds {
		acked := &ackSet{}
		start := time.Now()
		keys, err := x.de.upload(x.de.node("n1").url())
		if err != nil {
			b.Fatal(err)
		}
		acked.add(keys)
		x.fr.waitHasAll(acked, time.Minute, "n1")
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)-1]), "p99-ms")
}
