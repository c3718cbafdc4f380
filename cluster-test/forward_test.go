package clustertest

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// Uploads that reach a follower at the same time are forwarded to the
// leader in shared requests (node/forward_batch.go), and each still gets
// its own answer: every upload is acknowledged with its keys, every key is
// on every node, and the follower's covid_forward_batch_commands shows
// fewer requests than forwarded writes.
func TestConcurrentForwardsShareRequests(t *testing.T) {
	c := newCluster(t)
	c.form(3)
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	follower := without(c.ids(3), leader)[0]
	const uploads = 64
	reqs := make([]*publish.Request, uploads)
	for i := range reqs {
		req, err := c.signer.RandomUpload(14, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = req
	}
	var acked ackSet
	var wg sync.WaitGroup
	errs := make(chan error, uploads)
	for _, req := range reqs {
		wg.Go(func() {
			keys, err := c.publishRequest(c.node(follower).url(), req)
			if err != nil {
				errs <- err
				return
			}
			acked.add(keys)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("upload through follower %s: %v", follower, err)
	}
	if acked.len() != uploads*14 {
		t.Fatalf("%d keys acknowledged, want %d", acked.len(), uploads*14)
	}
	c.waitHasAll(&acked, 10*time.Second, c.ids(3)...)

	requests, commands := c.metricValue(follower, "covid_forward_batch_commands_count"), c.metricValue(follower, "covid_forward_batch_commands_sum")
	if commands < uploads {
		t.Fatalf("follower %s forwarded %v commands, want at least %d", follower, commands, uploads)
	}
	if requests >= commands {
		t.Fatalf("follower %s sent %v requests for %v forwarded commands: no batch held more than one", follower, requests, commands)
	}
	t.Logf("%v forwarded commands in %v requests", commands, requests)
}

// metricValue is the value of an unlabelled metric on a node's /metrics.
func (c *cluster) metricValue(id, name string) float64 {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.node(id).url()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				c.t.Fatalf("%s on %s: %v", name, id, err)
			}
			return f
		}
	}
	c.t.Fatalf("%s not on %s's /metrics (%v)", name, id, sc.Err())
	return 0
}
