package api

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/internal/kstest"
)

// Decoy answers have the sizes of real ones: over many answers a
// two-sample Kolmogorov-Smirnov test finds no difference (at a level of
// one in ten thousand), where the revision token alone, missing from
// decoys, would make the two apart entirely.
func TestDecoyAnswerSizes(t *testing.T) {
	ts, key, now := revisionServer(t)
	const n = 150
	var real, decoy []int
	for range n {
		body := signedBody(t, key, now, "confirmed", "", dayKeys(now, 7))
		w := ts.do(http.MethodPost, "/v1/publish", body, jsonCT)
		if w.Code != http.StatusOK {
			t.Fatalf("real upload: %d %s", w.Code, w.Body)
		}
		real = append(real, w.Body.Len())
		w = ts.do(http.MethodPost, "/v1/publish", signedBody(t, key, now, "confirmed", "", dayKeys(now, 7)),
			map[string]string{"Content-Type": "application/json", "X-Chaff": "1"})
		if w.Code != http.StatusOK {
			t.Fatalf("decoy: %d %s", w.Code, w.Body)
		}
		decoy = append(decoy, w.Body.Len())
	}
	d := kstest.Statistic(real, decoy)
	critical := 2.15 * math.Sqrt(2.0/n) // alpha = 1e-4
	if d > critical {
		t.Fatalf("answer sizes differ: KS statistic %.3f over %.3f (real %v..., decoy %v...)", d, critical, real[:5], decoy[:5])
	}
	// The test tells the distributions apart when they differ.
	shifted := make([]int, n)
	for i, s := range decoy {
		shifted[i] = s - 800
	}
	if kstest.Statistic(real, shifted) <= critical {
		t.Fatal("the test does not notice answers 800 bytes shorter")
	}
}

// Before this node has seen a real upload, a decoy takes as long as a
// recent write through the node took (the commit that dominates an
// upload), not a fixed delay an observer could learn.
func TestDecoyDelayBeforeFirstUpload(t *testing.T) {
	ts := newTestServer(t, nil)
	if _, ok := ts.srv.recent.Sample(); ok {
		t.Fatal("a new server has upload latencies")
	}
	registerGoldenAuthority(t, ts) // a write through the node
	written, ok := ts.node.WriteLatency()
	if !ok {
		t.Fatal("the write was not timed")
	}
	if got := ts.srv.chaffDelay(); got == defaultChaffDelay || got <= 0 {
		t.Fatalf("decoy delay %v: not drawn from the node's writes (one took %v)", got, written)
	}
	ts.srv.recent.Record(123 * time.Millisecond)
	if got := ts.srv.chaffDelay(); got != 123*time.Millisecond {
		t.Fatalf("decoy delay %v once an upload was seen, want that upload's 123ms", got)
	}
}
