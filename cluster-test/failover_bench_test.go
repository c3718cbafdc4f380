package clustertest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkFailover kills the leader of a 3-node region with kill -9 ten
// times and measures, each time, how long until the next upload sent
// after the kill is acknowledged: four clients post to the two survivors
// all along. The killed node restarts and catches up before the next
// round. Reported: median and worst of the ten, in milliseconds. make bench.
func BenchmarkFailover(b *testing.B) {
	const rounds = 10
	c := newCluster(b)
	c.form(3)
	for range b.N {
		var took []time.Duration
		for range rounds {
			took = append(took, failoverOnce(b, c))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
		b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "worst-ms")
		b.Logf("kill -9 of the leader to the next acknowledged upload: %v", took)
	}
}

// failoverOnce kills the leader and returns the time from the kill to the
// first acknowledged upload sent after it; the killed node is restarted
// and ready when it returns.
func failoverOnce(b *testing.B, c *cluster) time.Duration {
	b.StopTimer()
	leader := c.waitLeader(30*time.Second, c.ids(3)...)
	survivors := without(c.ids(3), leader)
	bodies := signedBodies(b, c, 400)
	client := &http.Client{Timeout: 2 * time.Second}
	var mu sync.Mutex
	var first time.Time
	next := make(chan []byte, len(bodies))
	for _, body := range bodies {
		next <- body
	}
	close(next)
	killed := make(chan time.Time, 1)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kill := <-killed
			killed <- kill
			for body := range next {
				resp, err := client.Post(c.node(survivors[w%2]).url()+"/v1/publish", "application/json", bytes.NewReader(body))
				if err != nil {
					continue
				}
				var out struct {
					InsertedExposures int `json:"insertedExposures"`
				}
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && out.InsertedExposures == 14 {
					mu.Lock()
					if first.IsZero() {
						first = time.Now()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	b.StartTimer()
	kill := time.Now()
	c.kill9(leader)
	killed <- kill
	wg.Wait()
	b.StopTimer()
	if first.IsZero() {
		b.Fatalf("no upload acknowledged after killing %s", leader)
	}
	c.start(nodeIndex(leader))
	c.waitReady(leader)
	waitApplied(b, c)
	b.StartTimer()
	return first.Sub(kill)
}
