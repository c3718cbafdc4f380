package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkOverload offers a 3-node region (raft over mutual TLS) ten
// times the clients its sustained run uses, for a fixed time each, and
// reports what it was offered, accepted and shed (429 and 503) per second,
// the p50 and p99 of accepted and of shed answers, and the most memory any
// node held (VmHWM). A shed client retries its upload at once, so the
// offered rate is many times the sustained one. Runs: the sustained load
// (64 clients); 640 clients with the default gate (128 uploads in flight a
// node, 100 ms wait for a slot), with the former default of 64, and with
// no cap; and the sustained load
// while a follower is paused (SIGSTOP), sent to the other two nodes only.
// Figures, not assertions: make bench.
func BenchmarkOverload(b *testing.B) {
	for _, tc := range []struct {
		name    string
		clients int
		flags   []string
		pause   bool
	}{
		{"sustained/clients=64", 64, nil, false},
		{"overload/clients=640", 640, nil, false},
		{"overload/clients=640/cap=64", 640, []string{"--max-uploads-in-flight", "64"}, false},
		{"overload/clients=640/no-cap", 640, []string{"--max-uploads-in-flight", "0"}, false},
		{"paused-follower/clients=64", 64, nil, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := newCluster(b, tc.flags...)
			c.form(3)
			targets := c.ids(3)
			if tc.pause {
				leader := c.waitLeader(10*time.Second, targets...)
				paused := without(targets, leader)[0]
				c.node(paused).cmd.Process.Signal(syscall.SIGSTOP)
				defer c.node(paused).cmd.Process.Signal(syscall.SIGCONT)
				targets = without(targets, paused)
			}
			for range b.N {
				runTimedLoad(b, c, tc.clients, targets, 10*time.Second)
			}
		})
	}
}

// runTimedLoad posts uploads from clients workers to the targets round
// robin for d and reports accepted and shed answers per second with
// their latencies, and the peak memory of the region's nodes. A worker
// sends a shed upload again; bodies are signed beforehand, so the load
// generator spends its share of the cores on sending.
func runTimedLoad(b *testing.B, c *cluster, clients int, targets []string, d time.Duration) {
	b.StopTimer()
	bodies := signedBodies(b, c, 16384)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var mu sync.Mutex
	var accepted, shed []time.Duration
	failed := map[string]int{}
	deadline := time.Now().Add(d)
	b.StartTimer()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i, sends := w, 0
			for ; time.Now().Before(deadline); sends++ {
				t0 := time.Now()
				// Each body once: a repeated one is a replay, answered without a commit.
				body := bodies[i%len(bodies)]
				if i >= len(bodies) {
					req, _ := c.signer.RandomUpload(14, time.Now())
					body, _ = json.Marshal(req)
				}
				resp, err := client.Post(c.node(targets[sends%len(targets)]).url()+"/v1/publish", "application/json", bytes.NewReader(body))
				took := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					failed["no answer"]++
				case resp.StatusCode == http.StatusOK:
					accepted = append(accepted, took)
					i += clients
				case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
					shed = append(shed, took)
				default:
					failed[resp.Status]++
					i += clients
				}
				mu.Unlock()
				if resp != nil {
					io.Copy(io.Discard, resp.Body) // read to the end, so the connection is kept
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if len(failed) > 0 {
		b.Logf("answers neither accepted nor shed: %v", failed)
	}
	if len(accepted) == 0 {
		b.Fatal("nothing accepted")
	}
	report := func(lat []time.Duration, unit string) {
		slices.Sort(lat)
		b.ReportMetric(float64(len(lat))/d.Seconds(), unit+"/s")
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, unit+"-p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, unit+"-p99-ms")
		}
	}
	b.ReportMetric(float64(len(accepted)+len(shed))/d.Seconds(), "offered/s")
	report(accepted, "accepted")
	report(shed, "shed")
	var peak int64
	for _, id := range c.ids(3) {
		peak = max(peak, peakRSS(c.node(id).cmd.Process.Pid))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-node-MiB")
	b.StartTimer()
}

// peakRSS reads a process's peak resident memory (VmHWM) in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
