package clustertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// BenchmarkPublishCodes3Nodes is BenchmarkPublish3Nodes with one-time codes
// instead of certificates: a registered provider issues one code per upload
// (all issued, replicated to every node, and the bodies built before the
// clock starts); each upload of 14 keys carries its code as
// verificationPayload, and the state machine checks and consumes the code
// in the same raft command that stores the keys. Clients spread their
// uploads over all nodes. Compare with BenchmarkPublish3Nodes at the same
// client counts in the same run:
//
//	go test -run XXX -benchtime 1x -bench 'BenchmarkPublishCodes3Nodes|BenchmarkPublish3Nodes/^clients=(16|64)$' \
//		-skip 'Publish3Nodes/clients=64/no-batch-apply' ./cluster-test/
func BenchmarkPublishCodes3Nodes(b *testing.B) {
	for _, tc := range []struct{ clients, uploads int }{
		{16, 3000},
		{64, 6000},
	} {
		b.Run(fmt.Sprintf("clients=%d", tc.clients), func(b *testing.B) {
			c := newCluster(b)
			c.form(3)
			token := c.providerToken(c.node("n2").url(), "bench")
			c.raiseCodeQuota()
			// Followers check provider tokens against their own state.
			waitApplied(b, c)
			for range b.N {
				benchPublishCodes(b, c, token, tc.clients, tc.uploads)
			}
		})
	}
}

func benchPublishCodes(b *testing.B, c *cluster, token string, clients, uploads int) {
	b.StopTimer()
	urls := []string{c.node("n1").url(), c.node("n2").url(), c.node("n3").url()}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	t0 := time.Now()
	codes := issueCodes(b, client, urls, token, uploads, min(clients, 16))
	waitApplied(b, c)
	b.Logf("issued and replicated %d codes in %v", len(codes), time.Since(t0).Round(time.Millisecond))
	bodies := make([][]byte, uploads)
	for i := range bodies {
		req, err := c.signer.RandomUpload(14, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		req.VerificationPayload = codes[i]
		bodies[i], _ = json.Marshal(req)
	}
	runUploads(b, c, clients, bodies, fmt.Sprintf("codes-clients%d", clients))
}

// issueCodes has the provider issue n codes through POST /v1/codes, round
// robin over the nodes, from a few workers.
func issueCodes(b *testing.B, client *http.Client, urls []string, token string, n, workers int) []string {
	b.Helper()
	codes := make([]string, n)
	errs := make([]error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				codes[i], errs[i] = issueOneCode(client, urls[i%len(urls)], token)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("issue code %d: %v", i, err)
		}
	}
	return codes
}

func issueOneCode(client *http.Client, addr, token string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, addr+"/v1/codes", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct{ Code string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.Code == "" {
		return "", fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	return out.Code, nil
}

// waitApplied waits until every node has applied what the leader had, so
// that no upload waits for its code to arrive.
func waitApplied(b *testing.B, c *cluster) {
	b.Helper()
	var target uint64
	for _, id := range c.ids(3) {
		if st, err := c.status(id); err == nil && st.AppliedIndex > target {
			target = st.AppliedIndex
		}
	}
	c.waitFor("every node to apply the issued codes", 30*time.Second, func() bool {
		for _, id := range c.ids(3) {
			if st, err := c.status(id); err != nil || st.AppliedIndex < target {
				return false
			}
		}
		return true
	})
}
