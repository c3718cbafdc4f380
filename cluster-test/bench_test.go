package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkPublish3Nodes measures accepted uploads per second and latency
// of a 3-node region on loopback: each upload has 14 keys and its own signed
// certificate; clients spread their uploads over all nodes, as apps do
// (two of three uploads are forwarded to the leader). Bodies are signed
// before the clock starts. Members speak raft over mutual TLS, as in
// production; the plaintext runs (--insecure-dev) tell what TLS costs. Run
// with: make bench.
func BenchmarkPublish3Nodes(b *testing.B) {
	for _, tc := range []struct {
		clients, uploads int
		flags            []string
		plaintext        bool
	}{
		{1, 300, nil, false},
		{16, 3000, nil, false},
		{16, 3000, nil, true},
		{64, 6000, nil, false},
		{64, 6000, nil, true},
		{64, 6000, []string{"--raft-no-batch-apply"}, false},
	} {
		name := fmt.Sprintf("clients=%d", tc.clients)
		if len(tc.flags) > 0 {
			name += "/no-batch-apply"
		}
		if tc.plaintext {
			name += "/plaintext-raft"
		}
		b.Run(name, func(b *testing.B) {
			c := newCluster(b, tc.flags...)
			c.insecure = tc.plaintext
			c.form(3)
			for range b.N {
				benchPublish(b, c, tc.clients, tc.uploads)
			}
		})
	}
}

func benchPublish(b *testing.B, c *cluster, clients, uploads int) {
	b.StopTimer()
	runUploads(b, c, clients, signedBodies(b, c, uploads), fmt.Sprintf("clients%d", clients))
}

// signedBodies signs n uploads of 14 keys beforehand.
func signedBodies(b *testing.B, c *cluster, n int) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		req, err := c.signer.RandomUpload(14, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		bodies[i], _ = json.Marshal(req)
	}
	return bodies
}

// runUploads posts pre-built upload bodies from clients workers, round
// robin over the three nodes, and reports uploads/s and latencies; every
// upload must store its 14 keys. Call with the timer stopped.
func runUploads(b *testing.B, c *cluster, clients int, bodies [][]byte, label string) {
	urls := []string{c.node("n1").url(), c.node("n2").url(), c.node("n3").url()}
	b.StartTimer()
	stopProfiles := c.profileIfAsked(b, label)
	defer stopProfiles()
	run := postUploads(b, urls, clients, bodies)
	b.StopTimer()
	run.report(b, "")
	b.StartTimer()
}

// uploadRun is what postUploads measured.
type uploadRun struct {
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

// report reports uploads/s, p50 and p99, their units prefixed.
func (r uploadRun) report(b *testing.B, prefix string) {
	b.ReportMetric(float64(len(r.latencies))/r.elapsed.Seconds(), prefix+"uploads/s")
	b.ReportMetric(float64(r.latencies[len(r.latencies)/2].Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(r.latencies[len(r.latencies)*99/100].Microseconds())/1000, prefix+"p99-ms")
}

// postUploads posts every body once from clients workers, round robin
// over urls; every upload must answer 200 with its 14 keys inserted.
func postUploads(b *testing.B, urls []string, clients int, bodies [][]byte) uploadRun {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	latencies := make([]time.Duration, len(bodies))
	var failures sync.Map
	next := make(chan int, len(bodies))
	for i := range bodies {
		next <- i
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				resp, err := client.Post(urls[(i+w)%len(urls)]+"/v1/publish", "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					failures.Store(i, err.Error())
					continue
				}
				var out struct {
					InsertedExposures int    `json:"insertedExposures"`
					Code              string `json:"code"`
				}
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || out.InsertedExposures != 14 {
					failures.Store(i, fmt.Sprintf("%s %s", resp.Status, out.Code))
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	failed := 0
	var first any
	failures.Range(func(_, v any) bool { failed++; first = v; return true })
	if failed > 0 {
		b.Fatalf("%d of %d uploads failed (e.g. %v)", failed, len(bodies), first)
	}
	slices.Sort(latencies)
	return uploadRun{elapsed: elapsed, latencies: latencies}
}

// profileIfAsked fetches 3-second CPU profiles of n1 (the leader) and n2
// while the load runs, into $COVID_BENCH_PROFILE_DIR when it is set.
func (c *cluster) profileIfAsked(b *testing.B, label string) (wait func()) {
	dir := os.Getenv("COVID_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	for _, id := range []string{"n1", "n2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, c.node(id).url()+"/debug/pprof/profile?seconds=3", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Logf("profile %s: %v", id, err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(filepath.Join(dir, label+"-"+id+".pprof"))
			if err != nil {
				b.Logf("profile %s: %v", id, err)
				return
			}
			defer f.Close()
			io.Copy(f, resp.Body)
		}()
	}
	return wg.Wait
}
