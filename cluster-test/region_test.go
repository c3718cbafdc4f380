package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A region formed by bootstrap and join takes uploads through every node,
// and every node serves every acknowledged key.
func TestFormRegionAndUploadThroughEveryNode(t *testing.T) {
	c := newCluster(t)
	c.form(3)
	acked := &ackSet{}
	for _, id := range c.ids(3) {
		for range 5 {
			keys, err := c.upload(c.node(id).url())
			if err != nil {
				t.Fatalf("upload through %s: %v", id, err)
			}
			acked.add(keys)
		}
	}
	c.waitHasAll(acked, 10*time.Second, c.ids(3)...)
	out := c.cli("members", "list", "--addr", c.node("n2").url())
	for _, id := range c.ids(3) {
		if !strings.Contains(out, id) {
			t.Fatalf("members list lacks %s:\n%s", id, out)
		}
	}
}

// Joining with a wrong region, a taken id or a wrong token fails the start
// with a clear message, and leaves no raft state in the data dir.
func TestJoinRefusals(t *testing.T) {
	c := newCluster(t)
	c.form(1)
	seed := c.joinAddr("n1")
	badToken := filepath.Join(c.dir, "bad-token")
	if err := os.WriteFile(badToken, []byte("not-the-region-token-at-all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, id, region, token, want string
		plaintext                     bool
	}{
		{"wrong region", "n7", "elsewhere", c.tokenFile, "region", false},
		{"duplicate id", "n1", "test", c.tokenFile, "already a member", false},
		{"wrong token on the API port", "n8", "test", badToken, "admin token", true},
		{"plaintext raft into a TLS region", "n9", "test", c.tokenFile, "speaks raft in plaintext", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(c.dir, "refused-"+tc.id)
			ip := c.ip(20 + i)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			member, join := c.memberFlags(tc.id, ip), seed
			if tc.plaintext { // asks through the API port, with the admin token
				member, join = []string{"--insecure-dev"}, c.node("n1").url()
			}
			out, err := exec.CommandContext(ctx, binary, append([]string{"serve", "--node-id", tc.id, "--region", tc.region,
				"--data-dir", dataDir, "--http-addr", ip + ":8080", "--raft-addr", ip + ":7000",
				"--admin-token-file", tc.token, "--join", join}, member...)...).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("serve should exit non-zero at once, got err=%v ctx=%v\n%s", err, ctx.Err(), out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("message should mention %q:\n%s", tc.want, out)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "raft.db")); !os.IsNotExist(err) {
				t.Fatalf("refused join left raft state in %s", dataDir)
			}
		})
	}
	st, err := c.status("n1")
	if err != nil || len(st.Members) != 1 {
		t.Fatalf("membership changed by refused joins: %+v %v", st, err)
	}
}

// The whole region stopped and started comes back from disk, with neither
// --bootstrap nor --join, and goes on taking uploads; so it does after every
// node is killed at once. SIGTERM on the leader hands leadership over
// before the process exits.
func TestRegionRestartFromDisk(t *testing.T) {
	c := newCluster(t)
	c.form(3)
	acked := &ackSet{}
	for range 10 {
		keys, err := c.upload(c.node("n2").url())
		if err != nil {
			t.Fatal(err)
		}
		acked.add(keys)
	}
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	c.stop(leader)
	if !c.logContains(leader, "leadership transferred before shutdown") {
		t.Fatalf("leader %s exited without transferring leadership:\n%s", leader, c.logTail(leader))
	}
	var rest []string
	for _, id := range c.ids(3) {
		if id != leader {
			rest = append(rest, id)
		}
	}
	c.waitLeader(5*time.Second, rest...)
	for _, id := range rest {
		c.stop(id)
	}
	for i := 1; i <= 3; i++ {
		c.start(i)
	}
	c.waitLeader(30*time.Second, c.ids(3)...)
	c.waitHasAll(acked, 30*time.Second, c.ids(3)...)
	keys, err := c.upload(c.node("n3").url())
	if err != nil {
		t.Fatalf("upload after restart: %v", err)
	}
	acked.add(keys)
	c.waitHasAll(acked, 10*time.Second, c.ids(3)...)

	// A crash of every node at once loses nothing acknowledged either.
	for _, id := range c.ids(3) {
		c.kill9(id)
	}
	for i := 1; i <= 3; i++ {
		c.start(i)
	}
	c.waitLeader(30*time.Second, c.ids(3)...)
	c.waitHasAll(acked, 30*time.Second, c.ids(3)...)
}

// A follower restarted in an idle region becomes ready without waiting for
// the next write: after an election the log ends in entries the state
// machine never sees (raft's no-op, the new leader's barrier), so a
// follower that waited for its state machine to reach the commit index
// stayed "not ready" until some client wrote. Every node is restarted in
// turn, twice, with no write in between.
func TestIdleRegionRestartsReady(t *testing.T) {
	c := newCluster(t)
	c.form(3)
	for round := range 2 {
		for i, id := range c.ids(3) {
			c.stop(id)
			c.start(i + 1)
			c.waitReady(id)
			t.Logf("round %d: %s ready after its restart", round+1, id)
		}
	}
}

// A node just restarted, or just elected, may not have applied the entries
// after its snapshot yet: one of them registered the health authority. It
// must answer an upload "retry" (503) in that window, never 401: a valid
// app would give up. A single node replays thousands of uploads after a
// kill -9 while clients upload from the moment its port opens.
func TestRestartedNodeNeverRefusesValidUploads(t *testing.T) {
	c := newCluster(t)
	c.form(1)
	const logged, clients = 3000, 4
	bodies := make([][]byte, logged+20*clients)
	for i := range bodies {
		req, err := c.signer.RandomUpload(14, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		bodies[i], _ = json.Marshal(req)
	}
	url := c.node("n1").url() + "/v1/publish"
	post := func(body []byte) (int, error) {
		resp, err := c.client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var wg sync.WaitGroup
	next := make(chan []byte, logged)
	for _, b := range bodies[:logged] {
		next <- b
	}
	close(next)
	for range 16 {
		wg.Go(func() {
			for b := range next {
				if status, err := post(b); err != nil || status != http.StatusOK {
					t.Errorf("upload before the restart: %d %v", status, err)
					return
				}
			}
		})
	}
	wg.Wait()
	c.kill9("n1")
	c.start(1)
	var mu sync.Mutex
	answers := map[int]int{}
	deadline := time.Now().Add(30 * time.Second)
	for w := range clients {
		wg.Go(func() {
			mine := bodies[logged+w*20 : logged+(w+1)*20]
			for len(mine) > 0 && time.Now().Before(deadline) {
				status, err := post(mine[0])
				if err == nil {
					mu.Lock()
					answers[status]++
					mu.Unlock()
				}
				switch {
				case status == http.StatusOK:
					return
				case err != nil || status == http.StatusServiceUnavailable:
					time.Sleep(time.Millisecond) // not open or not ready yet: poll
				default:
					mine = mine[1:]
				}
			}
		})
	}
	wg.Wait()
	t.Logf("answers while n1 restarted: %v", answers)
	for status, n := range answers {
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Errorf("%d uploads answered %d", n, status)
		}
	}
	if answers[http.StatusOK] == 0 {
		t.Fatalf("no upload accepted after the restart")
	}
}

// An operator adds a node that was started with neither --bootstrap nor
// --join (it waits to be added): the region admits it over the member
// port, and it catches up and serves uploads.
func TestOperatorAddsMember(t *testing.T) {
	c := newCluster(t)
	c.form(2)
	if _, err := c.upload(c.node("n1").url()); err != nil {
		t.Fatal(err)
	}
	c.start(3)
	c.cli("members", "add", "--addr", c.node("n2").url(), "--id", "n3",
		"--raft-addr", c.node("n3").ip+":7000", "--http-addr", c.node("n3").ip+":8080")
	c.waitReady("n3")
	c.waitAuthority("n3")
	keys, err := c.upload(c.node("n3").url())
	if err != nil {
		t.Fatalf("upload through the added node: %v", err)
	}
	acked := &ackSet{}
	acked.add(keys)
	c.waitHasAll(acked, 30*time.Second, c.ids(3)...)
}

// A consistent admin read answers on every node, followers included (they
// ask the leader for its read index over the member port), and holds what
// was acknowledged just before it.
func TestConsistentReadOnEveryNode(t *testing.T) {
	c := newCluster(t)
	c.form(3)
	for round, id := range c.ids(3) {
		keys, err := c.upload(c.node(c.ids(3)[(round+1)%3]).url())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, c.node(id).url()+"/v1/admin/keys?consistent=true", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Applied-Index") == "" {
			t.Fatalf("consistent read on %s: %d %s", id, resp.StatusCode, body)
		}
		for _, k := range keys {
			if !strings.Contains(string(body), k) {
				t.Fatalf("consistent read on %s lacks key %s acknowledged before it", id, k)
			}
		}
	}
}

// A node started with --dev registers a development health authority
// whose key lies in its data dir; started again without --dev it removes
// it, so that the key authorizes no upload in a region that now runs for
// real (issue 21, finding 15). The region's own authority stays.
func TestDevAuthorityLeavesWithTheFlag(t *testing.T) {
	c := newCluster(t, "--dev")
	c.form(1)
	listsDev := func() bool {
		out, err := c.cliResult("ha", "list", "--addr", c.node("n1").url())
		if err != nil {
			t.Fatalf("ha list: %v %s", err, out)
		}
		if !strings.Contains(out, c.signer.Issuer) {
			t.Fatalf("the test authority is gone: %s", out)
		}
		return strings.Contains(out, "dev.covid-backend.local")
	}
	c.waitFor("the development authority to be registered", 15*time.Second, listsDev)
	c.stop("n1")
	c.extra = nil
	c.start(1)
	c.waitReady("n1")
	c.waitFor("the development authority to be removed", 15*time.Second, func() bool { return !listsDev() })
}
