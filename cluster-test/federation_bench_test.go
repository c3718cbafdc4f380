package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Shape of BenchmarkFederation: five regions of two nodes each (ten
// covid-node processes, which a 2-core machine runs; with two nodes a
// remote region's follower gets a batch through raft from its leader, the
// only node that pulls), twenty seals rotating over the origins.
const (
	fedBenchNodes   = 2
	fedBenchRounds  = 20
	fedBenchIdle    = 20 * time.Second
	fedBenchPoll    = 25 * time.Millisecond
	fedBenchTimeout = 60 * time.Second
	fedBenchTarget  = 2 * time.Second
)

// BenchmarkFederation measures the gossip pool of five regions on loopback:
//
//   - seal-to-everywhere: from POST /v1/admin/seal in the origin (after
//     one 14-key upload) until every node of the other four regions
//     serves the signed batch; p50, p99 (of 20 rounds: the slowest) and
//     the per-node arrival median.
//   - idle-gossip: memberlist bytes (TCP and UDP, port 7946, IP headers
//     included) per node per second with no upload, counted by iptables
//     on lo in a chain of this benchmark's own; and, from the bytes counted
//     during the seal rounds less that idle rate, the gossip bytes that
//     announcing one batch costs the pool.
//   - bytes-per-key: the size of one signed batch as fetched from a
//     remote node, per key: padded (default --seal-min-keys 1000) and from
//     a sixth, single-node region with --seal-min-keys 0.
//
// Needs root for the gossip counters (idle-gossip skips without it).
// FEDBENCH_KEEP_LOGS=dir copies the node logs there at the end;
// FEDBENCH_LOG_LEVEL=debug shows failed fetches (and memberlist) in them.
func BenchmarkFederation(b *testing.B) {
	dir := b.TempDir()
	names := []string{"A", "B", "C", "D", "E"}
	p := newFedPool(b, dir)
	for _, name := range names {
		p.addRegion(name, fedBenchNodes)
	}
	for _, a := range names {
		for _, o := range names {
			if a != o {
				p.trust(a, o)
			}
		}
	}
	p.waitMembers(len(names) * fedBenchNodes)
	counter, why := newGossipCounter(b, p.clusters())
	p.counter = counter
	if keep := os.Getenv("FEDBENCH_KEEP_LOGS"); keep != "" {
		b.Cleanup(func() { p.copyLogs(keep) })
	}

	var rounds fedRounds // filled by seal-to-everywhere, used by idle-gossip
	gossipPerBatch := -1.0
	steps := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"seal-to-everywhere", func(b *testing.B) {
			rounds = p.sealRounds(b, names, counter)
			b.ReportMetric(0, "ns/op")
			rounds.report(b)
		}},
		{"idle-gossip", func(b *testing.B) {
			if counter == nil {
				b.Skip(why)
			}
			time.Sleep(5 * time.Second) // let the last announcements die out
			var idle gossipBytes
			var took time.Duration
			for range b.N {
				before, t0 := counter.read(), time.Now()
				time.Sleep(fedBenchIdle)
				idle, took = counter.read().minus(before), time.Since(t0)
			}
			nodes := float64(len(names) * fedBenchNodes)
			perNodeSec := func(v int64) float64 { return float64(v) / nodes / took.Seconds() }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(perNodeSec(idle.total()), "B/node/s")
			b.ReportMetric(perNodeSec(idle.udp), "udp-B/node/s")
			b.ReportMetric(perNodeSec(idle.tcp), "tcp-B/node/s")
			b.ReportMetric(perNodeSec(idle.pkts), "pkts/node/s")
			if rounds.n > 0 && rounds.gossip.total() > 0 {
				rate := float64(idle.total()) / took.Seconds()
				extra := float64(rounds.gossip.total()) - rate*rounds.gossipTook.Seconds()
				gossipPerBatch = extra / float64(rounds.n)
				b.ReportMetric(gossipPerBatch, "announce-B/batch")
				b.Logf("during the %d seal rounds (%v) the pool moved %d gossip bytes (%d udp, %d tcp); idle rate %.0f B/s over %d nodes",
					rounds.n, rounds.gossipTook.Round(time.Millisecond), rounds.gossip.total(), rounds.gossip.udp, rounds.gossip.tcp, rate, int(nodes))
			}
		}},
		{"bytes-per-key/padded", func(b *testing.B) {
			for range b.N {
				p.batchBytes(b, "A", names[1:], gossipPerBatch)
			}
		}},
		{"bytes-per-key/seal-min-keys=0", func(b *testing.B) {
			if p.regions["U"] == nil {
				p.addRegion("U", 1, "--padding-keys-per-day", "0")
				for _, name := range names {
					p.trust(name, "U")
				}
				p.waitMembers(len(names)*fedBenchNodes + 1)
			}
			for range b.N {
				p.batchBytes(b, "U", names, gossipPerBatch)
			}
		}},
	}
	for _, s := range steps {
		ok := b.Run(s.name, func(sb *testing.B) {
			p.bind(sb)
			defer p.bind(b)
			s.run(sb)
		})
		if !ok {
			break
		}
	}
}

// fedPool is a gossip pool of regions started by the benchmark: like
// federatedRegions, for any testing.TB, with per-region flags and
// regions added later.
type fedPool struct {
	tb      testing.TB
	dir     string
	poolKey string
	seed    string
	regions map[string]*cluster
	order   []string
	client  *http.Client
	counter *gossipCounter // nil without root
}

func newFedPool(tb testing.TB, dir string) *fedPool {
	tb.Helper()
	p := &fedPool{tb: tb, dir: dir, poolKey: filepath.Join(dir, "pool.key"), regions: map[string]*cluster{},
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	p.run("keygen", "--pool", "--out", p.poolKey)
	return p
}

func (p *fedPool) run(args ...string) {
	p.tb.Helper()
	if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
		p.tb.Fatalf("covid-node %v: %v %s", args, err, out)
	}
}

// bind makes the pool and its regions fail (and log to) tb: a
// sub-benchmark must not call FailNow on its parent.
func (p *fedPool) bind(tb testing.TB) {
	p.tb = tb
	if p.counter != nil {
		p.counter.tb = tb
	}
	for _, c := range p.regions {
		c.t = tb
	}
}

func (p *fedPool) clusters() []*cluster {
	var out []*cluster
	for _, name := range p.order {
		out = append(out, p.regions[name])
	}
	return out
}

// addRegion starts a region of n nodes with its own signing key in the
// pool; no region trusts it yet.
func (p *fedPool) addRegion(name string, n int, extra ...string) *cluster {
	p.tb.Helper()
	prefix := filepath.Join(p.dir, name)
	p.run("keygen", "--out", prefix)
	_, flags := benchExportKey(p.tb, p.tb.TempDir())
	flags = append(flags, "--signing-key-file", prefix+".key", "--signing-key-id", name+"-1",
		"--federation-pool-key-file", p.poolKey, "--seal-interval", "1h")
	if level := os.Getenv("FEDBENCH_LOG_LEVEL"); level != "" {
		flags = append(flags, "--log-level", level) // the last one counts
	}
	c := newCluster(p.tb, append(flags, extra...)...)
	c.region = name
	// Every node but the seed itself joins the seed: the first region's
	// other nodes too (federatedRegions leaves them out of the pool).
	if p.seed == "" {
		p.seed = c.ip(1) + ":7946"
	}
	seed := p.seed
	c.nodeFlags = func(ip string) []string {
		flags := []string{"--federation-addr", ip + ":7946"}
		if ip+":7946" != seed {
			flags = append(flags, "--federation-join", seed)
		}
		return flags
	}
	c.form(n)
	p.regions[name] = c
	p.order = append(p.order, name)
	return c
}

// trust makes region truster keep (serve) the batches of region trusted.
func (p *fedPool) trust(truster, trusted string) {
	p.tb.Helper()
	c := p.regions[truster]
	c.cli("trust", "add", "--addr", c.node("n1").url(), "--region", trusted, "--key-id", trusted+"-1",
		"--public-key-file", filepath.Join(p.dir, trusted+".pub.pem"))
}

// waitMembers waits until every node sees n members in the pool.
func (p *fedPool) waitMembers(n int) {
	p.tb.Helper()
	deadline := time.Now().Add(fedBenchTimeout)
	for _, c := range p.clusters() {
		for _, id := range c.ids(len(c.nodes)) {
			for {
				var st struct {
					Pool struct{ Members []string }
				}
				status, body, err := c.tryAdminGet(id, "/v1/admin/federation")
				if err == nil && status == http.StatusOK && json.Unmarshal(body, &st) == nil && len(st.Pool.Members) == n {
					break
				}
				if time.Now().After(deadline) {
					p.tb.Fatalf("%s/%s does not see %d pool members: %d %v %s", c.region, id, n, status, err, body)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

// seal uploads 14 keys to origin's n1 and seals a batch there; it returns
// the keys (base64), the seal result and when the seal was sent.
func (p *fedPool) seal(origin string) ([]string, sealResult, time.Time) {
	p.tb.Helper()
	c := p.regions[origin]
	keys, err := c.upload(c.node("n1").url())
	if err != nil {
		p.tb.Fatalf("upload to %s: %v", origin, err)
	}
	req, err := http.NewRequest(http.MethodPost, c.node("n1").url()+"/v1/admin/seal", nil)
	if err != nil {
		p.tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		p.tb.Fatalf("seal in %s: %v", origin, err)
	}
	defer resp.Body.Close()
	var res sealResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || res.Seq == 0 {
		p.tb.Fatalf("seal in %s: %d %v %+v", origin, resp.StatusCode, err, res)
	}
	return keys, res, start
}

// sealResult is the JSON of fsm.SealResult.
type sealResult struct {
	Seq, Keys, Padding, Revised int
}

// arrival is when one node first served a batch (-1: never, within the
// timeout).
type arrival struct {
	region, id string
	after      time.Duration
}

// awaitBatch polls every node of the given regions, each in its own
// goroutine, until it serves origin's batch seq, and returns when each
// did, measured from start.
func (p *fedPool) awaitBatch(origin string, seq int, start time.Time, regions []string) []arrival {
	path := fmt.Sprintf("/v1/federation/batches/%s/%d", origin, seq)
	results := make(chan arrival)
	count := 0
	for _, name := range regions {
		c := p.regions[name]
		for _, id := range c.ids(len(c.nodes)) {
			count++
			url := c.node(id).url() + path
			go func() {
				deadline := start.Add(fedBenchTimeout)
				for time.Now().Before(deadline) {
					if resp, err := p.client.Get(url); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							results <- arrival{name, id, time.Since(start)}
							return
						}
					}
					time.Sleep(fedBenchPoll)
				}
				results <- arrival{name, id, -1}
			}()
		}
	}
	out := make([]arrival, 0, count)
	for range count {
		out = append(out, <-results)
	}
	return out
}

// fedRounds is what seal-to-everywhere measured.
type fedRounds struct {
	n          int
	everywhere []time.Duration // per round: the last node
	perNode    []time.Duration // every node of every round
	gossip     gossipBytes     // counted from the first seal to the end
	gossipTook time.Duration
}

// sealRounds seals fedBenchRounds batches per b.N, rotating the origin,
// and waits for each on every node of the other regions.
func (p *fedPool) sealRounds(b *testing.B, names []string, counter *gossipCounter) fedRounds {
	var r fedRounds
	var before gossipBytes
	if counter != nil {
		before = counter.read()
	}
	t0 := time.Now()
	for i := range b.N * fedBenchRounds {
		origin := names[i%len(names)]
		others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == origin })
		_, res, start := p.seal(origin)
		arrivals := p.awaitBatch(origin, res.Seq, start, others)
		var last arrival
		var line []string
		for _, a := range arrivals {
			if a.after < 0 {
				b.Fatalf("round %d: %s/%s did not serve %s batch %d within %v", i+1, a.region, a.id, origin, res.Seq, fedBenchTimeout)
			}
			r.perNode = append(r.perNode, a.after)
			if a.after > last.after {
				last = a
			}
			line = append(line, fmt.Sprintf("%s/%s %v", a.region, a.id, a.after.Round(time.Millisecond)))
		}
		slices.Sort(line)
		r.everywhere = append(r.everywhere, last.after)
		r.n++
		b.Logf("round %2d: %s batch %d (%d keys + %d padding) on all %d nodes after %v, last %s/%s [%s]",
			i+1, origin, res.Seq, res.Keys, res.Padding, len(arrivals), last.after.Round(time.Millisecond),
			last.region, last.id, strings.Join(line, ", "))
		if last.after > fedBenchTarget {
			p.explain(b, origin, res.Seq)
		}
		p.checkCopies(b, origin, res.Seq, others)
	}
	if counter != nil {
		time.Sleep(3 * time.Second) // the last round's re-broadcasts
		r.gossip, r.gossipTook = counter.read().minus(before), time.Since(t0)
	}
	p.warnings(b)
	return r
}

// warnings logs how often each warning or error message appears in the
// nodes' logs.
func (p *fedPool) warnings(b *testing.B) {
	msg := regexp.MustCompile(`level=(WARN|ERROR) msg=("[^"]*"|\S+)`)
	counts := map[string]int{}
	for _, c := range p.clusters() {
		for _, id := range c.ids(len(c.nodes)) {
			data, _ := os.ReadFile(c.node(id).logPath)
			for _, m := range msg.FindAllSubmatch(data, -1) {
				counts[c.region+"/"+id+" "+string(m[1])+" "+string(m[2])]++
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		b.Logf("log: %s x%d", k, counts[k])
	}
}

func (r fedRounds) report(b *testing.B) {
	pct := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(float64(len(s))*q))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(r.everywhere, 0.50), "p50-ms")
	b.ReportMetric(pct(r.everywhere, 0.99), "p99-ms")
	b.ReportMetric(pct(r.perNode, 0.50), "node-p50-ms")
	over := 0
	for _, d := range r.everywhere {
		if d > fedBenchTarget {
			over++
		}
	}
	b.ReportMetric(float64(over), "rounds-over-2s")
}

// explain logs, for a slow round, what the nodes' logs say about the
// batch: who imported it when, and from which holder.
func (p *fedPool) explain(b *testing.B, origin string, seq int) {
	needle := fmt.Sprintf("origin=%s seq=%d ", origin, seq)
	for _, c := range p.clusters() {
		for _, id := range c.ids(len(c.nodes)) {
			f, err := os.Open(c.node(id).logPath)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
			for sc.Scan() {
				if line := sc.Text(); strings.Contains(line+" ", needle) {
					b.Logf("  %s/%s: %s", c.region, id, line)
				}
			}
			f.Close()
		}
	}
}

// checkCopies logs any node whose copy of the batch differs from what the
// origin serves now (they should be byte for byte the same).
func (p *fedPool) checkCopies(b *testing.B, origin string, seq int, others []string) {
	path := fmt.Sprintf("/v1/federation/batches/%s/%d", origin, seq)
	_, want, _ := p.regions[origin].get("n1", path)
	for _, name := range others {
		c := p.regions[name]
		for _, id := range c.ids(len(c.nodes)) {
			if _, got, _ := c.get(id, path); !bytes.Equal(got, want) {
				b.Logf("%s/%s serves %s batch %d as %d bytes, the origin as %d bytes", name, id, origin, seq, len(got), len(want))
			}
		}
	}
}

// batchBytes seals one batch in origin, waits for it on every node of the
// other regions and reports its size per key, as fetched from one of them.
func (p *fedPool) batchBytes(b *testing.B, origin string, others []string, gossipPerBatch float64) {
	uploaded, res, start := p.seal(origin)
	for _, a := range p.awaitBatch(origin, res.Seq, start, others) {
		if a.after < 0 {
			b.Fatalf("%s/%s did not serve %s batch %d within %v", a.region, a.id, origin, res.Seq, fedBenchTimeout)
		}
	}
	_, data, _ := p.regions[others[0]].get("n1", fmt.Sprintf("/v1/federation/batches/%s/%d", origin, res.Seq))
	var signed fsmpb.SignedBatch
	var body fsmpb.FederationBatch
	if err := proto.Unmarshal(data, &signed); err != nil {
		b.Fatalf("decode signed batch: %v", err)
	}
	if err := proto.Unmarshal(signed.GetBody(), &body); err != nil {
		b.Fatalf("decode batch body: %v", err)
	}
	keys := len(body.GetKeys())
	if keys != res.Keys+res.Padding || res.Keys != len(uploaded) {
		b.Fatalf("batch holds %d keys, the seal reported %d + %d padding for %d uploaded", keys, res.Keys, res.Padding, len(uploaded))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(data)), "batch-B")
	b.ReportMetric(float64(keys), "keys")
	b.ReportMetric(float64(len(data))/float64(keys), "B/key")
	b.ReportMetric(float64(len(data))/float64(res.Keys), "B/real-key")
	if gossipPerBatch >= 0 {
		b.ReportMetric((float64(len(data))+gossipPerBatch)/float64(res.Keys), "with-gossip-B/real-key")
	}
	b.Logf("%s batch %d: %d bytes (body %d, signature %d, export.sig %d), %d keys of which %d padding",
		origin, res.Seq, len(data), len(signed.GetBody()), len(signed.GetSignature()), len(signed.GetExportSig()), keys, res.Padding)
}

// copyLogs copies every node's log to dir/<region>-<node>.log.
func (p *fedPool) copyLogs(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, c := range p.clusters() {
		for _, id := range c.ids(len(c.nodes)) {
			if data, err := os.ReadFile(c.node(id).logPath); err == nil {
				_ = os.WriteFile(filepath.Join(dir, c.region+"-"+id+".log"), data, 0o644)
			}
		}
	}
}

// gossipCounter counts memberlist traffic of the pool with iptables rules
// (no verdict: counters only) in a chain of its own, jumped to from INPUT
// on lo. Per region subnet: UDP to port 7946 (gossip and probes go
// 7946 to 7946), TCP to port 7946 (push/pull and join, the dialing side)
// and TCP from port 7946 (the answers). Bytes are IP packet lengths.
type gossipCounter struct {
	tb    testing.TB
	chain string
}

type gossipBytes struct{ udp, tcp, pkts int64 }

func (g gossipBytes) total() int64 { return g.udp + g.tcp }

func (g gossipBytes) minus(o gossipBytes) gossipBytes {
	return gossipBytes{g.udp - o.udp, g.tcp - o.tcp, g.pkts - o.pkts}
}

// newGossipCounter installs the counting chain, removed at cleanup; it
// returns nil and why when it cannot.
func newGossipCounter(tb testing.TB, regions []*cluster) (*gossipCounter, string) {
	if os.Geteuid() != 0 {
		return nil, "gossip counters need root (iptables)"
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, "iptables not found"
	}
	g := &gossipCounter{tb: tb, chain: fmt.Sprintf("FEDBENCH%d", os.Getpid())}
	g.ipt("-N", g.chain)
	tb.Cleanup(func() {
		for _, args := range [][]string{{"-D", "INPUT", "-i", "lo", "-j", g.chain}, {"-F", g.chain}, {"-X", g.chain}} {
			_ = exec.Command("iptables", append([]string{"-w"}, args...)...).Run()
		}
	})
	for _, c := range regions {
		net := fmt.Sprintf("127.0.%d.0/24", c.subnet)
		g.ipt("-A", g.chain, "-d", net, "-p", "udp", "--dport", "7946", "-m", "comment", "--comment", "fedbench-udp")
		g.ipt("-A", g.chain, "-d", net, "-p", "tcp", "--dport", "7946", "-m", "comment", "--comment", "fedbench-tcp")
		g.ipt("-A", g.chain, "-s", net, "-p", "tcp", "--sport", "7946", "-m", "comment", "--comment", "fedbench-tcp")
	}
	g.ipt("-I", "INPUT", "-i", "lo", "-j", g.chain)
	return g, ""
}

func (g *gossipCounter) ipt(args ...string) string {
	g.tb.Helper()
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).Output()
	if err != nil {
		g.tb.Fatalf("iptables %v: %v", args, err)
	}
	return string(out)
}

var counterRule = regexp.MustCompile(`--comment "?(fedbench-\w+)"? .*-c (\d+) (\d+)`)

// read sums the chain's counters.
func (g *gossipCounter) read() gossipBytes {
	g.tb.Helper()
	var sum gossipBytes
	for _, line := range strings.Split(g.ipt("-S", g.chain, "-v"), "\n") {
		m := counterRule.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pkts, _ := strconv.ParseInt(m[2], 10, 64)
		n, _ := strconv.ParseInt(m[3], 10, 64)
		sum.pkts += pkts
		if m[1] == "fedbench-udp" {
			sum.udp += n
		} else {
			sum.tcp += n
		}
	}
	return sum
}
