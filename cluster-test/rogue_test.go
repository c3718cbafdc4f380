package clustertest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/federation/fedpb"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// rogue is a pool member run by the test: it has the pool key (so it can
// gossip) but no region's signing key, claims to hold batches of an origin
// and answers fetches with whatever serve gives.
type rogue struct {
	ml    *memberlist.Memberlist
	srv   *http.Server
	url   string
	marks []*fedpb.Mark
	hits  atomic.Int64
}

// startRogue joins the pool at ip (ports 7946 and 8080) with the given
// marks, under holderURL in its gossip (its own URL unless set).
func startRogue(t *testing.T, poolKeyFile, ip, join, holderURL string, marks []*fedpb.Mark, serve http.HandlerFunc) *rogue {
	t.Helper()
	raw, err := os.ReadFile(poolKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{url: "http://" + ip + ":8080", marks: marks}
	if holderURL == "" {
		holderURL = r.url
	}
	l, err := net.Listen("tcp", ip+":8080")
	if err != nil {
		t.Fatal(err)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		serve(w, req)
	})}
	go r.srv.Serve(l)
	keyring, err := memberlist.NewKeyring(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	mc := memberlist.DefaultWANConfig()
	mc.Name = "A/rogue@" + ip + ":7946"
	mc.BindAddr, mc.BindPort, mc.AdvertiseAddr, mc.AdvertisePort = ip, 7946, ip, 7946
	mc.Keyring = keyring
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.PushPullInterval = time.Second
	mc.Logger = log.New(io.Discard, "", 0)
	mc.Delegate = rogueDelegate{r: r, holder: holderURL}
	if r.ml, err = memberlist.Create(mc); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ml.Join([]string{join}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	return r
}

func (r *rogue) stop() {
	if r.ml != nil {
		r.ml.Leave(time.Second)
		r.ml.Shutdown()
		r.ml = nil
	}
	r.srv.Close()
}

// rogueDelegate announces the rogue's marks in every push/pull.
type rogueDelegate struct {
	r      *rogue
	holder string
}

func (d rogueDelegate) NodeMeta(int) []byte {
	b, _ := proto.Marshal(&fedpb.Meta{Region: "A", HttpUrl: d.r.url})
	return b
}
func (d rogueDelegate) NotifyMsg([]byte)                           {}
func (d rogueDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d rogueDelegate) MergeRemoteState([]byte, bool)              {}
func (d rogueDelegate) LocalState(bool) []byte {
	b, _ := proto.Marshal(&fedpb.State{HolderUrl: d.holder, Marks: d.r.marks})
	return b
}

// sealSigned uploads through the first node, seals, and returns the
// region's signed federation batch seq once its last node serves it.
func (c *cluster) sealSigned(seq int) []byte {
	c.t.Helper()
	if _, err := c.upload(c.node(c.id(1)).url()); err != nil {
		c.t.Fatal(err)
	}
	c.adminPost(c.id(1), "/v1/admin/seal")
	var data []byte
	id := c.id(len(c.nodes))
	c.waitFor(fmt.Sprintf("%s's signed batch %d", c.region, seq), 20*time.Second, func() bool {
		status, got, _, _ := c.tryGet(id, fmt.Sprintf("/v1/federation/batches/%s/%d", c.region, seq))
		data = got
		return status == http.StatusOK
	})
	return data
}

// appliedIndexes reads every node's raft applied index.
func appliedIndexes(t *testing.T, c *cluster) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, id := range c.ids(len(c.nodes)) {
		st, err := c.status(id)
		if err != nil {
			t.Fatalf("%s/%s status: %v", c.region, id, err)
		}
		out[id] = st.AppliedIndex
	}
	return out
}

// settledIndexes waits until the applied indexes of a region's nodes stop
// moving (a new leader's jobs, expiry and seal, commit at once) and
// returns them.
func settledIndexes(t *testing.T, c *cluster) map[string]uint64 {
	t.Helper()
	last := appliedIndexes(t, c)
	c.waitFor(c.region+"'s raft log to settle", 30*time.Second, func() bool {
		time.Sleep(time.Second)
		now := appliedIndexes(t, c)
		settled := fmt.Sprint(now) == fmt.Sprint(last)
		last = now
		return settled
	})
	return last
}

// rejectedBy sums a refusal reason over the pool status of every node.
func rejectedBy(t *testing.T, c *cluster, reason string) int {
	t.Helper()
	n := 0
	for _, id := range c.ids(len(c.nodes)) {
		_, body, err := c.tryAdminGet(id, "/v1/admin/federation")
		if err != nil {
			t.Fatalf("%s/%s federation status: %v", c.region, id, err)
		}
		var st struct {
			Pool struct{ Rejected map[string]int }
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("%s/%s federation status: %v", c.region, id, err)
		}
		n += st.Pool.Rejected[reason]
	}
	return n
}

// A pool member with the pool key but no signing key cannot get anything
// into another region: holders it invents for other hosts are never asked,
// what it serves (oversized, gzip-compressed, not a batch, or a real batch
// with its export signature stripped) is refused before it reaches raft,
// and the honest copies still win, byte for byte.
func TestRoguePoolMemberChangesNothing(t *testing.T) {
	dir := t.TempDir()
	regions := federatedRegions(t, dir, []string{"A", "B"}, 3)
	a, b := regions["A"], regions["B"]
	waitBatchEverywhere(t, []*cluster{b}, "A", 1, a.sealSigned(1))
	before := settledIndexes(t, b) // members' own records, a new leader's jobs

	// Junk: every rogue claims A's batches up to 50.
	claim := []*fedpb.Mark{{Origin: "A", First: 1, Last: 50, Digest: []byte{1}}}
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(bytes.Repeat([]byte{0}, 256<<20))
	zw.Close()
	seed := a.ip(1) + ":7946"
	rogueIP := func(i int) string { return fmt.Sprintf("127.0.%d.%d", b.subnet, 100+i) }
	junk := []*rogue{
		startRogue(t, filepath.Join(dir, "pool.key"), rogueIP(1), seed, "", claim, func(w http.ResponseWriter, _ *http.Request) {
			chunk := bytes.Repeat([]byte{0x0a}, 1<<20)
			for range 64 { // 64 MiB, twice the batch limit
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}),
		startRogue(t, filepath.Join(dir, "pool.key"), rogueIP(2), seed, "", claim, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb.Bytes())
		}),
		startRogue(t, filepath.Join(dir, "pool.key"), rogueIP(3), seed, "", claim, func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("\x0a\x05hello, not a signed batch"))
		}),
	}
	// One more announces a holder on a host that is not itself.
	var elsewhere atomic.Int64
	decoy := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) })}
	l, err := net.Listen("tcp", rogueIP(5)+":8080")
	if err != nil {
		t.Fatal(err)
	}
	go decoy.Serve(l)
	defer decoy.Close()
	junk = append(junk, startRogue(t, filepath.Join(dir, "pool.key"), rogueIP(4), seed, "http://"+rogueIP(5)+":8080", claim,
		func(http.ResponseWriter, *http.Request) {}))
	b.waitFor("B's leader to ask each junk rogue", 60*time.Second, func() bool {
		for _, r := range junk[:3] {
			if r.hits.Load() == 0 {
				return false
			}
		}
		return true
	})
	b.waitFor("B to reject the batch that is not one", 10*time.Second, func() bool { return rejectedBy(t, b, "bad_batch") > 0 })
	if after := appliedIndexes(t, b); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("B's raft logs moved while only junk was offered: %v, then %v", before, after)
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("B fetched from a host no pool member is (%d requests)", elsewhere.Load())
	}
	for _, r := range junk {
		r.stop()
	}

	// A stripper relays A's real batches without their export signature;
	// with B cut off from A, it is the only holder B hears of.
	fw := newFirewall(t, b.subnet)
	for i := 1; i <= 3; i++ {
		for j := 1; j <= 3; j++ {
			fw.isolate(b.ip(i), a.ip(j))
		}
	}
	var strippedServed atomic.Int64
	startRogue(t, filepath.Join(dir, "pool.key"), rogueIP(6), seed, "", []*fedpb.Mark{{Origin: "A", First: 1, Last: 2}},
		func(w http.ResponseWriter, req *http.Request) {
			status, data, _ := a.get("n3", req.URL.Path)
			var sb fsmpb.SignedBatch
			if status != http.StatusOK || proto.Unmarshal(data, &sb) != nil {
				http.NotFound(w, req)
				return
			}
			sb.ExportSig = nil
			out, _ := proto.Marshal(&sb)
			w.Write(out)
			strippedServed.Add(1)
		})
	before = appliedIndexes(t, b)
	honest := a.sealSigned(2)
	b.waitFor("B to refuse A's batch 2 with its export signature stripped", 60*time.Second, func() bool {
		return strippedServed.Load() > 0 && rejectedBy(t, b, "bad_signature") > 0
	})
	if after := appliedIndexes(t, b); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("B's raft logs moved while only a stripped batch was offered: %v, then %v", before, after)
	}
	fw.heal()
	waitBatchEverywhere(t, []*cluster{b}, "A", 2, honest)
	_, index, _ := a.get("n1", "/v1/regions/A/exports/index.txt")
	for _, name := range strings.Split(string(index), "\n") {
		_, want, _ := a.get("n1", "/"+name)
		for _, id := range b.ids(3) {
			if _, got, _ := b.get(id, "/"+name); !bytes.Equal(got, want) {
				t.Fatalf("B/%s serves A's %s altered", id, name)
			}
		}
	}
}

// A batch that expired in a region is never taken again: offered by an
// operator or by its origin's holders after expiry, it is refused as a
// replay, and nothing reaches the raft log.
func TestReplayedBatchAfterExpiryIsRefused(t *testing.T) {
	regions := federatedRegions(t, t.TempDir(), []string{"A", "B"}, 1)
	a, b := regions["A"], regions["B"]
	old := a.sealSigned(1)
	waitBatchEverywhere(t, []*cluster{b}, "A", 1, old)

	// B's clock moves 16 days on: retention (14 days) lets A's batch go.
	b.stop("n1")
	b.start(1, "--test-clock-offset", "384h")
	b.waitReady("n1")
	b.waitLeader(10*time.Second, "n1")
	b.adminPost("n1", "/v1/admin/expire")
	if status, _, _ := b.get("n1", "/v1/federation/batches/A/1"); status != http.StatusNotFound {
		t.Fatalf("A's batch 1 after expiry in B: %d, want 404", status)
	}
	before := settledIndexes(t, b)
	req, _ := http.NewRequest(http.MethodPost, b.node("n1").url()+"/v1/admin/federation/import", bytes.NewReader(old))
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "replayed_batch") {
		t.Fatalf("replayed batch 1: %d %s, want 422 replayed_batch", resp.StatusCode, body)
	}
	if after := appliedIndexes(t, b); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("B's raft log moved for a replayed batch: %v, then %v", before, after)
	}
	// A's next batch chains to the mark B kept: B takes it, and never
	// batch 1 again, though A still offers it.
	next := a.sealSigned(2)
	waitBatchEverywhere(t, []*cluster{b}, "A", 2, next)
	if status, _, _ := b.get("n1", "/v1/federation/batches/A/1"); status != http.StatusNotFound {
		t.Fatalf("B took A's expired batch 1 again: %d", status)
	}
	if n := rejectedBy(t, b, "replayed_batch"); n != 0 {
		t.Fatalf("B's puller fetched %d replays: it should not ask for batches below the mark", n)
	}
}
