package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// federatedRegions starts regions of n nodes each in one encrypted gossip
// pool, each trusting all the others; extra flags go to every node.
func federatedRegions(t *testing.T, dir string, names []string, n int, extra ...string) map[string]*cluster {
	t.Helper()
	return federatedRegionsWith(t, dir, names, n, nil, extra...)
}

// federatedRegionsWith is federatedRegions with setup run on each region
// before its nodes start.
func federatedRegionsWith(t *testing.T, dir string, names []string, n int, setup func(*cluster), extra ...string) map[string]*cluster {
	t.Helper()
	poolKey := filepath.Join(dir, "pool.key")
	run := func(args ...string) {
		if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
			t.Fatalf("covid-node %v: %v %s", args, err, out)
		}
	}
	run("keygen", "--pool", "--out", poolKey)
	regions := map[string]*cluster{}
	var seed string
	for _, name := range names {
		prefix := filepath.Join(dir, name)
		run("keygen", "--out", prefix)
		key, exportFlags := exportKey(t, t.TempDir())
		c := newCluster(t, append(exportFlags, "--signing-key-file", prefix+".key", "--signing-key-id", name+"-1",
			"--federation-pool-key-file", poolKey, "--seal-interval", "1h")...)
		c.extra = append(c.extra, extra...)
		c.exportKey = key
		c.region = name
		if seed == "" {
			seed = c.ip(1) + ":7946" // the first region's n1 seeds the pool
		}
		join := seed
		c.nodeFlags = func(ip string) []string {
			flags := []string{"--federation-addr", ip + ":7946"}
			if ip+":7946" != join {
				flags = append(flags, "--federation-join", join)
			}
			return flags
		}
		if setup != nil {
			setup(c)
		}
		c.form(n)
		regions[name] = c
	}
	for _, name := range names {
		for _, other := range names {
			if other != name {
				c := regions[name]
				c.cli("trust", "add", "--addr", c.node("n1").url(), "--region", other, "--key-id", other+"-1",
					"--public-key-file", filepath.Join(dir, other+".pub.pem"))
			}
		}
	}
	return regions
}

// waitBatchEverywhere waits until every node of the regions serves
// origin's batch seq, byte-identical to want, and returns how long it took.
func waitBatchEverywhere(t *testing.T, regions []*cluster, origin string, seq int, want []byte) time.Duration {
	t.Helper()
	start := time.Now()
	for _, r := range regions {
		for _, id := range r.ids(len(r.nodes)) {
			r.waitFor(fmt.Sprintf("%s/%s to hold %s batch %d", r.region, id, origin, seq), 60*time.Second, func() bool {
				status, got, _, _ := r.tryGet(id, fmt.Sprintf("/v1/federation/batches/%s/%d", origin, seq))
				if status == http.StatusOK && !bytes.Equal(got, want) {
					t.Fatalf("%s/%s serves %s batch %d altered", r.region, id, origin, seq)
				}
				return status == http.StatusOK
			})
		}
	}
	return time.Since(start)
}

// A batch sealed in A reaches every node of B and C through the gossip
// pool; with A cut off from C (but not from B) C still gets A's batches,
// through B, byte for byte.
func TestGossipAcrossRegions(t *testing.T) {
	dir := t.TempDir()
	regions := federatedRegions(t, dir, []string{"A", "B", "C"}, 3)
	a, b, c := regions["A"], regions["B"], regions["C"]
	fw := newFirewall(t, a.subnet)

	took := waitBatchEverywhere(t, []*cluster{b, c}, "A", 1, a.sealSigned(1))
	t.Logf("A's batch 1 on all 6 nodes of B and C after %v", took.Round(time.Millisecond))

	for i := 1; i <= 3; i++ {
		for j := 1; j <= 3; j++ {
			fw.isolate(a.ip(i), c.ip(j))
		}
	}
	took = waitBatchEverywhere(t, []*cluster{b, c}, "A", 2, a.sealSigned(2))
	t.Logf("with A cut off from C, A's batch 2 reached C through B after %v", took.Round(time.Millisecond))
	fromB := false
	for _, id := range c.ids(3) {
		fromB = fromB || c.logContains(id, `msg="federation: imported batch" origin=A seq=2 from=B/n1@`) ||
			c.logContains(id, `msg="federation: imported batch" origin=A seq=2 from=B/n2@`) ||
			c.logContains(id, `msg="federation: imported batch" origin=A seq=2 from=B/n3@`)
	}
	if !fromB {
		t.Fatal("C did not take A's batch 2 from a node of B")
	}
	fw.heal()

	// The whole of C killed; A seals meanwhile; C restarted catches up.
	for _, id := range c.ids(3) {
		c.kill9(id)
	}
	third := a.sealSigned(3)
	for i := 1; i <= 3; i++ {
		c.start(i)
	}
	// B too, before the rogue's batches are told apart from A's by number.
	took = waitBatchEverywhere(t, []*cluster{b, c}, "A", 3, third)
	t.Logf("C restarted and caught up with A's batch 3 after %v", took.Round(time.Millisecond))

	// A rogue gateway with the pool key but not A's signing key claims to
	// be A and announces newer batches: they are refused everywhere.
	forger := filepath.Join(dir, "forger")
	if out, err := exec.Command(binary, "keygen", "--out", forger).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	rogue := newCluster(t, "--signing-key-file", forger+".key", "--signing-key-id", "A-1",
		"--federation-pool-key-file", filepath.Join(dir, "pool.key"), "--seal-interval", "1h")
	rogue.region = "A"
	rogue.nodeFlags = func(ip string) []string {
		return []string{"--federation-addr", ip + ":7946", "--federation-join", a.ip(1) + ":7946"}
	}
	rogue.form(1)
	for range 4 {
		if _, err := rogue.upload(rogue.node("n1").url()); err != nil {
			t.Fatal(err)
		}
		rogue.adminPost("n1", "/v1/admin/seal")
	}
	// Only the rogue holds its batch: a region whose leader missed the
	// announcement (gossip is UDP) learns of it when that leader happens to
	// push/pull with the rogue, one random member every 5 s among ten.
	for _, r := range []*cluster{b, c} {
		r.waitFor(r.region+" (its leader, which imports) to reject the rogue's batch", 90*time.Second, func() bool {
			rejected := 0
			for _, id := range r.ids(3) {
				_, body, _ := r.tryAdminGet(id, "/v1/admin/federation")
				var st struct {
					Origins []struct {
						Origin  string `json:"origin"`
						LastSeq uint32 `json:"last_seq"`
					}
					Pool struct{ Rejected map[string]int }
				}
				if json.Unmarshal(body, &st) != nil {
					return false
				}
				for _, o := range st.Origins {
					if o.Origin == "A" && o.LastSeq != 3 {
						t.Fatalf("%s took a rogue batch: A's last is %d", r.region, o.LastSeq)
					}
				}
				rejected += st.Pool.Rejected["bad_signature"]
			}
			return rejected > 0
		})
		if _, got, _ := r.get("n2", "/v1/federation/batches/A/3"); !bytes.Equal(got, third) {
			t.Fatalf("%s's copy of A's batch 3 changed", r.region)
		}
		// The public status names no pool member's address; the
		// operators' does.
		_, public, _ := r.get("n1", "/v1/federation")
		_, private, _ := r.tryAdminGet("n1", "/v1/admin/federation")
		if bytes.Contains(public, []byte(":7946")) || bytes.Contains(public, []byte(`"pool"`)) || !bytes.Contains(private, []byte(":7946")) {
			t.Fatalf("%s's federation status: public %s, operators' %s", r.region, public, private)
		}
	}

	// With all of A down, B's nodes serve A's index and export files
	// byte-identical to A's own.
	_, index, _ := a.get("n1", "/v1/regions/A/exports/index.txt")
	names := strings.Split(string(index), "\n")
	if len(names) != 3 {
		t.Fatalf("A lists %d batch files, want 3: %q", len(names), index)
	}
	files := map[string][]byte{}
	for _, name := range names {
		status, data, _ := a.get("n2", "/"+name)
		if status != http.StatusOK {
			t.Fatalf("A's own %s: %d", name, status)
		}
		files[name] = data
	}
	for _, id := range a.ids(3) {
		a.kill9(id)
	}
	rogue.kill9("n1")
	for _, id := range b.ids(3) {
		if _, got, _ := b.get(id, "/v1/regions/A/exports/index.txt"); !bytes.Equal(got, index) {
			t.Fatalf("B/%s lists A's files as %q, A as %q", id, got, index)
		}
		for name, want := range files {
			if _, got, _ := b.get(id, "/"+name); !bytes.Equal(got, want) {
				t.Fatalf("B/%s serves %s altered", id, name)
			}
		}
	}
}

// Regions that trust A with merge take A's keys into their own key sets,
// and a revocation in A removes the key in B and C.
func TestRevocationCrossesRegions(t *testing.T) {
	dir := t.TempDir()
	regions := federatedRegions(t, dir, []string{"A", "B", "C"}, 1)
	a := regions["A"]
	for _, name := range []string{"B", "C"} {
		r := regions[name]
		r.cli("trust", "add", "--addr", r.node("n1").url(), "--region", "A", "--key-id", "A-1",
			"--public-key-file", filepath.Join(dir, "A.pub.pem"), "--merge")
	}
	keys, err := a.upload(a.node("n1").url())
	if err != nil {
		t.Fatal(err)
	}
	a.adminPost("n1", "/v1/admin/seal")
	stored := func(r *cluster, revoked bool) bool {
		req, _ := http.NewRequest(http.MethodGet, r.node("n1").url()+"/v1/admin/keys", nil)
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := r.client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var out struct {
			Keys []struct {
				Key     string
				Revoked bool
			}
		}
		if json.NewDecoder(resp.Body).Decode(&out) != nil {
			return false
		}
		have := map[string]bool{}
		for _, k := range out.Keys {
			have[k.Key] = k.Revoked == revoked
		}
		for _, k := range keys {
			if !have[k] {
				return false
			}
		}
		return true
	}
	for _, name := range []string{"B", "C"} {
		r := regions[name]
		r.waitFor(name+" to merge A's keys", 30*time.Second, func() bool { return stored(r, false) })
	}
	var subs struct{ Submissions []struct{ ID string } }
	if err := json.Unmarshal([]byte(a.cli("submissions", "--json", "--addr", a.node("n1").url())), &subs); err != nil || len(subs.Submissions) == 0 {
		t.Fatalf("A's submissions: %v", err)
	}
	a.cli("revoke", "--addr", a.node("n1").url(), "--reason", "false positive", "--submission", subs.Submissions[0].ID)
	a.adminPost("n1", "/v1/admin/seal")
	for _, name := range []string{"B", "C"} {
		r := regions[name]
		r.waitFor(name+" to revoke A's keys", 30*time.Second, func() bool { return stored(r, true) })
	}
}
