package clustertest

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Edge nodes join as raft non-voters: they serve every read byte for byte
// as the voters do and forward writes; losing all of them loses nothing
// and stops no write; one can be promoted to a voter; an edge node cannot
// start a region.
func TestEdgeNodes(t *testing.T) {
	c, _ := keyServiceCluster(t)
	for i := 4; i <= 5; i++ {
		c.start(i, "--join", c.joinAddr("n1"), "--edge")
		c.waitReady(fmt.Sprintf("n%d", i))
	}
	out := c.cli("members", "list", "--addr", c.node("n1").url())
	for _, id := range []string{"n4", "n5"} {
		if !memberHas(out, id, "Nonvoter") {
			t.Fatalf("%s is not a non-voter:\n%s", id, out)
		}
	}
	acked := &ackSet{}
	for _, id := range []string{"n4", "n5", "n1"} {
		keys, err := c.upload(c.node(id).url())
		if err != nil {
			t.Fatalf("upload through %s: %v", id, err)
		}
		acked.add(keys)
	}
	c.waitHasAll(acked, 20*time.Second, c.ids(5)...)
	var names []string
	c.waitFor("a batch", 20*time.Second, func() bool {
		_, b, _ := c.get("n4", "/v1/exports/batches.txt")
		names = strings.Fields(string(b))
		return len(names) > 0
	})
	for _, name := range names {
		_, want, _ := c.get("n1", "/"+name)
		for _, id := range []string{"n4", "n5"} {
			c.waitFor(id+" to serve "+name, 10*time.Second, func() bool {
				status, got, _, _ := c.tryGet(id, "/"+name)
				return status == http.StatusOK && bytes.Equal(got, want)
			})
		}
	}
	// Every edge node gone: the voters go on, nothing acknowledged is lost.
	c.kill9("n4")
	c.kill9("n5")
	keys, err := c.upload(c.node("n2").url())
	if err != nil {
		t.Fatalf("upload with every edge node down: %v", err)
	}
	acked.add(keys)
	c.waitHasAll(acked, 20*time.Second, c.ids(3)...)
	// n5 back and promoted: now it votes.
	c.start(5)
	c.waitReady("n5")
	c.cli("members", "promote", "--addr", c.node("n2").url(), "--id", "n5")
	if out := c.cli("members", "list", "--addr", c.node("n1").url()); !memberHas(out, "n5", "Voter") {
		t.Fatalf("n5 was not promoted:\n%s", out)
	}
	if out, err := exec.Command(binary, "serve", "--node-id", "x", "--region", "test", "--data-dir", t.TempDir(),
		"--bootstrap", "--edge", "--insecure-dev").CombinedOutput(); err == nil || !strings.Contains(string(out), "cannot start a region") {
		t.Fatalf("an edge node starting a region: %v %s", err, out)
	}
}

// memberHas tells whether the members list shows id with the suffrage.
func memberHas(table, id, suffrage string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == id && f[3] == suffrage {
			return true
		}
	}
	return false
}

// BenchmarkPublishWithEdges measures uploads through the three voters of a
// region with 0, 2 and 4 edge nodes replicating: edge nodes do not count
// toward quorum, so write latency should not grow with them (on 2 cores
// they still take CPU). Run with: make bench.
func BenchmarkPublishWithEdges(b *testing.B) {
	for _, edges := range []int{0, 2, 4} {
		b.Run(fmt.Sprintf("edges=%d", edges), func(b *testing.B) {
			c := newCluster(b)
			c.form(3)
			for i := 4; i < 4+edges; i++ {
				c.start(i, "--join", c.joinAddr("n1"), "--edge")
				c.waitReady(fmt.Sprintf("n%d", i))
			}
			for range b.N {
				benchPublish(b, c, 16, 2000)
			}
		})
	}
}
