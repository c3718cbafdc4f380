package clustertest

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// BenchmarkVerificationFlow3Nodes measures what an unmodified app does
// after a positive test, end to end on a 3-node region: /api/verify, then
// /api/certificate, then /v1/publish with that certificate (14 keys), each
// call to a different node. Codes are issued and upload bodies built
// before the clock starts. Run with: make bench.
func BenchmarkVerificationFlow3Nodes(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			c, deviceKey, labKey := verificationCluster(b)
			for range b.N {
				benchFlows(b, c, deviceKey, labKey, clients, 50*clients)
			}
		})
	}
}

func benchFlows(b *testing.B, c *cluster, deviceKey, labKey string, clients, flows int) {
	b.StopTimer()
	var codes []string
	for len(codes) < flows {
		batch := []map[string]any{}
		for range 10 {
			batch = append(batch, map[string]any{"testType": "confirmed"})
		}
		status, out := c.api("n1", "/api/batch-issue", labKey, map[string]any{"codes": batch})
		if status != http.StatusOK {
			b.Fatalf("batch-issue: %d %v", status, out)
		}
		for _, item := range out["codes"].([]any) {
			codes = append(codes, item.(map[string]any)["code"].(string))
		}
	}
	codes = codes[:flows]
	nodes := c.ids(3)
	lead, err := c.status("n1")
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range nodes { // every node has every code before the clock starts
		c.waitFor(id+" to have the codes", 20*time.Second, func() bool {
			st, err := c.status(id)
			return err == nil && st.AppliedIndex >= lead.AppliedIndex
		})
	}
	latencies := make([]time.Duration, flows)
	next := make(chan int, flows)
	for i := range flows {
		next <- i
	}
	close(next)
	var failed sync.Map
	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				if err := appFlow(c, nodes, (i+w)%3, deviceKey, codes[i]); err != nil {
					failed.Store(i, err)
					continue
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	failed.Range(func(_, v any) bool { b.Fatalf("a flow failed: %v", v); return false })
	slices.Sort(latencies)
	b.ReportMetric(float64(flows)/elapsed.Seconds(), "flows/s")
	b.ReportMetric(float64(latencies[flows/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[flows*99/100].Microseconds())/1000, "p99-ms")
	b.StartTimer()
}

// appFlow is one app's verify, certificate and publish, on three nodes.
func appFlow(c *cluster, nodes []string, first int, deviceKey, code string) error {
	post := func(id, path string, body any, key string) (int, map[string]any, error) {
		return postJSON(c.client, c.node(id).url()+path, key, body)
	}
	status, v, err := post(nodes[first], "/api/verify", map[string]any{"code": code}, deviceKey)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("verify: %d %v %v", status, v, err)
	}
	req, mac, err := publish.RandomKeys(verifyAppID, 14, time.Now())
	if err != nil {
		return err
	}
	status, cert, err := post(nodes[(first+1)%3], "/api/certificate", map[string]any{"token": v["token"], "ekeyhmac": mac}, deviceKey)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("certificate: %d %v %v", status, cert, err)
	}
	req.VerificationPayload = cert["certificate"].(string)
	status, pub, err := post(nodes[(first+2)%3], "/v1/publish", req, "")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("publish: %d %v %v", status, pub, err)
	}
	return nil
}
