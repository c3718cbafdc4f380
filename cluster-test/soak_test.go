package clustertest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/cluster-test/soak"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/publish"
)

// TestSoak runs two federated regions of three nodes under steady load
// from app clients through random nodes while a nemesis drawn from a seed
// injects faults one after another (soak.Kinds: kill -9, SIGSTOP,
// partitions within and between regions, leadership transfers, member
// replacement, clock jumps, slowed, stalled and cut member links through
// a proxy). The load uploads, revises, goes through the code flow, reads
// consistently and downloads the delta feed, index and files. After
// healing it checks that every acknowledged key and revision is on every
// node of its region, in its exports and in its files on every node of
// the other region, no code or token admitted more than one upload, code
// claims and consistent reads are linearizable (porcupine), every node
// serves the same bytes for every export file and federated batch and
// every export verifies, and prints the table. COVID_SOAK_DURATION (default 2m) sets how long faults go on;
// COVID_SOAK_SEEDS a comma-separated list of seeds, "random" drawing one
// (default "1,random"; the seed is printed, so any run can be replayed).
func TestSoak(t *testing.T) {
	duration := 2 * time.Minute
	if d := os.Getenv("COVID_SOAK_DURATION"); d != "" {
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("COVID_SOAK_DURATION=%q: %v", d, err)
		}
	}
	seeds := os.Getenv("COVID_SOAK_SEEDS")
	if seeds == "" {
		seeds = "1,random"
	}
	for _, s := range strings.Split(seeds, ",") {
		seed := rand.Uint64() % 1_000_000
		if s != "random" {
			var err error
			if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
				t.Fatalf("COVID_SOAK_SEEDS: %q is not a seed", s)
			}
		}
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("replay with: make soak SOAK_SEEDS=%d SOAK_DURATION=%v", seed, duration)
			runSoak(t, seed, duration)
		})
	}
}

// soakRegion is one region under soak: its cluster, the API keys of its
// verification service, its live members and what it acknowledged.
type soakRegion struct {
	c                 *cluster
	deviceKey, labKey string
	mu                sync.Mutex
	live              []string
	next              int // index of the next fresh member
	acked             *ackSet
	// revised are the keys of acknowledged revisions (likely to confirmed).
	revised *ackSet
	// cursor is the delta feed's next cursor, as the downloader last got it.
	cursor string
	// uses counts uploads admitted per one-time code.
	uses map[string]int
	// codes are recently claimed codes' UUIDs, for the readers.
	codes []string
}

func (r *soakRegion) members() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.live...)
}

func (r *soakRegion) pick(rng *rand.Rand) string {
	m := r.members()
	return m[rng.IntN(len(m))]
}

// soakRun is the state of one run shared by clients and the nemesis.
type soakRun struct {
	t       *soakT
	regions []*soakRegion
	fw      *firewall
	proxy   *linkProxy
	tally   *soak.Tally
	history *soak.History
	client  *http.Client
}

func runSoak(t *testing.T, seed uint64, duration time.Duration) {
	st := &soakT{T: t}
	t.Cleanup(st.repeat) // first registered, so it runs after the nodes' logs are shown
	fw := newFirewall(t, 200+int(seed%50))
	names := []string{"SA", "SB"}
	proxy := newLinkProxy(t)
	clusters := federatedRegionsWith(t, t.TempDir(), names, 3, func(c *cluster) { c.proxy = proxy }, append(verificationFlags(t),
		"--seal-interval", "5s", "--padding-keys-per-day", "0", "--code-failures-per-hour", "0")...)
	run := &soakRun{t: st, fw: fw, proxy: proxy, tally: soak.NewTally(), history: &soak.History{},
		client: &http.Client{Timeout: 5 * time.Second}}
	for _, name := range names {
		c := clusters[name]
		deviceKey, labKey := c.verificationKeys()
		c.raiseCodeQuota()
		run.regions = append(run.regions, &soakRegion{c: c, deviceKey: deviceKey, labKey: labKey,
			live: c.ids(3), next: 4, acked: &ackSet{}, revised: &ackSet{}, uses: map[string]int{}, cursor: "0"})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for ri, r := range run.regions {
		for w := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run.runClient(stop, r, rand.New(rand.NewPCG(seed, uint64(ri*10+w))), w)
			}()
		}
	}
	schedule := soak.NewSchedule(seed, len(run.regions))
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		f := schedule.Next()
		run.inject(f)
		run.tally.Fault(f.Kind)
	}
	healed := time.Now()
	close(stop)
	wg.Wait()
	result := run.check(healed)
	result.Seed, result.Duration = seed, duration
	t.Logf("\n%s", run.tally.Table(result))
	if result.KeysAcknowledged == 0 {
		st.Fatal("no upload was acknowledged: the soak tested nothing")
	}
	if !result.Linearizable {
		st.Fatalf("code claims and consistent reads are not linearizable:\n%s", result.LinearizabilityCheck)
	}
}

// soakT is the soak's test, which keeps what failed and says it again at
// the very end: the nodes' logs shown on failure would otherwise bury it,
// and CI shows only the end of a run.
type soakT struct {
	*testing.T
	mu       sync.Mutex
	failures []string
}

func (t *soakT) note(msg string) {
	t.mu.Lock()
	t.failures = append(t.failures, msg)
	t.mu.Unlock()
}

// Error, Errorf, Fatal and Fatalf note the failure and report it.
func (t *soakT) Error(args ...any) { t.Helper(); t.note(fmt.Sprint(args...)); t.T.Error(args...) }
func (t *soakT) Errorf(format string, args ...any) {
	t.Helper()
	t.note(fmt.Sprintf(format, args...))
	t.T.Errorf(format, args...)
}
func (t *soakT) Fatal(args ...any) { t.Helper(); t.note(fmt.Sprint(args...)); t.T.Fatal(args...) }
func (t *soakT) Fatalf(format string, args ...any) {
	t.Helper()
	t.note(fmt.Sprintf(format, args...))
	t.T.Fatalf(format, args...)
}

// repeat says the failures again, and that any other failure came from
// the harness (a node that did not come back, a command that failed).
func (t *soakT) repeat() {
	if !t.Failed() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failures) == 0 {
		t.Logf("the soak failed in its harness: see the first error above the nodes' logs")
		return
	}
	t.Logf("the soak failed on (said again after the nodes' logs):\n%s", strings.Join(t.failures, "\n"))
}

// runClient is one app client of a region: worker 0 and 1 upload with the
// health authority's certificates, 2 goes through the whole one-time code
// flow (racing claims on two nodes), 3 reads codes' status consistently,
// 4 downloads the index and the newest file and seals now and then.
func (run *soakRun) runClient(stop <-chan struct{}, r *soakRegion, rng *rand.Rand, worker int) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		switch worker {
		case 0, 1:
			run.certUpload(r, rng)
		case 2:
			run.codeFlow(r, rng)
		case 3:
			run.consistentRead(r, rng, worker)
		default:
			run.download(r, rng)
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// outcomeOf tells a definite answer from an ambiguous one: 2xx is ok, a
// 4xx a refusal that changed nothing, anything else (5xx, no answer) may
// or may not have taken effect.
func outcomeOf(status int, err error) soak.Outcome {
	switch {
	case err == nil && status/100 == 2:
		return soak.OK
	case err == nil && status/100 == 4:
		return soak.Refused
	}
	return soak.Unknown
}

// record counts an answer by kind and outcome, and any answer but a
// success by its status and error code (or the transport error), for the
// table; it returns the outcome.
func (run *soakRun) record(kind string, status int, body map[string]any, err error) soak.Outcome {
	o := outcomeOf(status, err)
	run.tally.Op(kind, o)
	switch {
	case err != nil && strings.Contains(err.Error(), "Timeout"):
		run.tally.Answer(kind, "no answer within 5 s")
	case err != nil:
		run.tally.Answer(kind, "connection failed")
	case o != soak.OK:
		code := body["code"]
		if code == nil {
			code = body["errorCode"]
		}
		run.tally.Answer(kind, fmt.Sprintf("%d %v", status, code))
	}
	return o
}

// post sends JSON to a node; the API key is optional.
func (run *soakRun) post(r *soakRegion, id, path, key string, body any) (int, map[string]any, error) {
	return postJSON(run.client, r.c.node(id).url()+path, key, body)
}

// certUpload uploads with a health authority's certificate; one in four
// uploads is certified likely and, once acknowledged, revised to confirmed.
func (run *soakRun) certUpload(r *soakRegion, rng *rand.Rand) {
	req, err := r.c.signer.RandomUpload(14, time.Now())
	revise := rng.IntN(4) == 0
	if err == nil && revise {
		err = r.c.signer.Certify(req, publish.ReportTypeLikely, time.Now())
	}
	if err != nil {
		run.t.Error(err)
		return
	}
	status, out, err := run.post(r, r.pick(rng), "/v1/publish", "", req)
	o := run.record("upload (certificate)", status, out, err)
	if o == soak.OK {
		if n, _ := out["insertedExposures"].(float64); int(n) != len(req.Keys) {
			run.t.Errorf("upload acknowledged with %v of %d keys inserted", out["insertedExposures"], len(req.Keys))
		}
		r.acked.add(keysOf(req))
		if token, _ := out["revisionToken"].(string); revise {
			run.revise(r, rng, req, token)
		}
	}
	if o != soak.OK {
		time.Sleep(50 * time.Millisecond)
	}
}

// revise sends an acknowledged likely upload again as confirmed with the
// revision token it got, as an app does once the test confirms it.
func (run *soakRun) revise(r *soakRegion, rng *rand.Rand, req *publish.Request, token string) {
	req.RevisionToken = token
	if err := r.c.signer.Certify(req, publish.ReportTypeConfirmed, time.Now()); err != nil {
		run.t.Error(err)
		return
	}
	status, out, err := run.post(r, r.pick(rng), "/v1/publish", "", req)
	if run.record("revision", status, out, err) == soak.OK {
		r.revised.add(keysOf(req))
	}
}

func keysOf(req *publish.Request) []string {
	keys := make([]string, len(req.Keys))
	for i, k := range req.Keys {
		keys[i] = k.Key
	}
	return keys
}

// codeFlow issues a code, claims it on two nodes at once, and goes
// through certificate and upload with every token it got (asking for a
// certificate twice per token); each upload admitted counts against the
// code.
func (run *soakRun) codeFlow(r *soakRegion, rng *rand.Rand) {
	status, issued, err := run.post(r, r.pick(rng), "/api/issue", r.labKey, map[string]any{"testType": "confirmed"})
	if run.record("issue code", status, issued, err) != soak.OK {
		time.Sleep(100 * time.Millisecond)
		return
	}
	code, uuid := issued["code"].(string), issued["uuid"].(string)
	tokens := make([]string, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		id := r.pick(rng)
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := time.Now()
			status, v, err := run.post(r, id, "/api/verify", r.deviceKey, map[string]any{"code": code})
			o := run.record("claim code", status, v, err)
			run.history.Add(soak.Op{Client: 100 + i, Code: uuid, Kind: soak.Claim, Outcome: o, Call: call, Return: time.Now()})
			if o == soak.OK {
				tokens[i], _ = v["token"].(string)
			}
		}()
	}
	wg.Wait()
	r.mu.Lock()
	r.codes = append(r.codes, uuid)
	if len(r.codes) > 64 {
		r.codes = r.codes[len(r.codes)-64:]
	}
	r.mu.Unlock()
	for _, token := range tokens {
		if token == "" {
			continue
		}
		for range 2 {
			run.certificateUpload(r, rng, uuid, token)
		}
	}
}

// certificateUpload exchanges a token for a certificate and uploads with
// it; an upload admitted counts against the code.
func (run *soakRun) certificateUpload(r *soakRegion, rng *rand.Rand, uuid, token string) {
	req, mac, err := publish.RandomKeys(verifyAppID, 14, time.Now())
	if err != nil {
		run.t.Error(err)
		return
	}
	status, cert, err := run.post(r, r.pick(rng), "/api/certificate", r.deviceKey, map[string]any{"token": token, "ekeyhmac": mac})
	if run.record("certificate", status, cert, err) != soak.OK {
		return
	}
	req.VerificationPayload, _ = cert["certificate"].(string)
	status, out, err := run.post(r, r.pick(rng), "/v1/publish", "", req)
	o := run.record("upload (one-time code)", status, out, err)
	if o == soak.OK {
		r.acked.add(keysOf(req))
		r.mu.Lock()
		r.uses[uuid]++
		r.mu.Unlock()
	}
}

// consistentRead asks a random node for a recent code's status with
// ?consistent=true and records the answer.
func (run *soakRun) consistentRead(r *soakRegion, rng *rand.Rand, worker int) {
	r.mu.Lock()
	var uuid string
	if len(r.codes) > 0 {
		uuid = r.codes[rng.IntN(len(r.codes))]
	}
	r.mu.Unlock()
	if uuid == "" {
		time.Sleep(50 * time.Millisecond)
		return
	}
	call := time.Now()
	status, st, err := run.post(r, r.pick(rng), "/api/checkcodestatus?consistent=true", r.labKey, map[string]any{"uuid": uuid})
	o := run.record("consistent read", status, st, err)
	if status == http.StatusNotFound {
		// The code was issued, and acknowledged, before this read began.
		run.t.Errorf("a consistent read of issued code %s answered 404: %v", uuid, st)
	}
	claimed, _ := st["claimed"].(bool)
	run.history.Add(soak.Op{Client: worker, Code: uuid, Kind: soak.Read, Outcome: o, Claimed: claimed, Call: call, Return: time.Now()})
	time.Sleep(20 * time.Millisecond)
}

// download reads the index and the newest listed file from a random node,
// and the delta feed since the cursor it last got. The node must serve
// what it has just listed, unless it was restarted in between (a restarted
// node may not have applied the batch yet).
func (run *soakRun) download(r *soakRegion, rng *rand.Rand) {
	id := r.pick(rng)
	r.mu.Lock()
	cursor := r.cursor
	r.mu.Unlock()
	status, body, h, err := r.c.tryGet(id, "/v1/keys?since="+cursor)
	var refusal map[string]any
	if status != http.StatusOK {
		json.Unmarshal(body, &refusal) // a lagging node's bad_cursor, say
	}
	if run.record("download delta", status, refusal, err) == soak.OK {
		r.mu.Lock()
		r.cursor = h.Get("X-Next-Cursor")
		r.mu.Unlock()
	}
	process := r.c.node(id).cmd
	status, index, _, err := r.c.tryGet(id, "/v1/exports/index.txt")
	run.record("download index", status, nil, err)
	if names := strings.Fields(string(index)); status == http.StatusOK && len(names) > 0 {
		name := names[len(names)-1]
		status, _, _, err = r.c.tryGet(id, "/"+name)
		run.record("download file", status, nil, err)
		if status == http.StatusNotFound && r.c.node(id).cmd == process {
			run.t.Errorf("%s/%s listed %s and then answered 404 for it", r.c.region, id, name)
		}
	}
}

// inject applies one fault, holds it for its duration, heals it and
// rests.
func (run *soakRun) inject(f soak.Fault) {
	r := run.regions[f.Region]
	live := r.members()
	target := live[f.Node%len(live)]
	if f.Kind == soak.KillLeader {
		if l := r.c.leaderAmong(live...); l != "" {
			target = l
		}
	}
	run.t.Logf("nemesis: %s on %s/%s for %v", f.Kind, r.c.region, target, f.For)
	switch f.Kind {
	case soak.Kill, soak.KillLeader:
		r.c.kill9(target)
		time.Sleep(f.For)
		r.c.start(nodeIndex(target))
	case soak.Pause:
		p := r.c.node(target).cmd.Process
		p.Signal(syscall.SIGSTOP)
		time.Sleep(f.For)
		p.Signal(syscall.SIGCONT)
	case soak.PartitionNode:
		var others []string
		for _, id := range live {
			if id != target {
				others = append(others, r.c.node(id).ip)
			}
		}
		run.fw.isolate(r.c.node(target).ip, others...)
		time.Sleep(f.For)
		run.fw.heal()
	case soak.PartitionRegions:
		other := run.regions[(f.Region+1)%len(run.regions)]
		var theirs []string
		for _, id := range other.members() {
			theirs = append(theirs, other.c.node(id).ip)
		}
		for _, id := range live {
			run.fw.isolate(r.c.node(id).ip, theirs...)
		}
		time.Sleep(f.For)
		run.fw.heal()
	case soak.TransferLeadership:
		out, err := r.c.cliResult("members", "transfer-leadership", "--addr", r.c.node(target).url())
		if err != nil {
			run.t.Logf("nemesis: leadership transfer refused: %v %s", err, strings.TrimSpace(out))
		}
		time.Sleep(f.For)
	case soak.ReplaceMember:
		run.replace(r, f, live)
	case soak.LinkDelay:
		run.proxy.set(r.c.node(target).ip, linkFault{delay: f.Delay})
		time.Sleep(f.For)
		run.proxy.set(r.c.node(target).ip, linkFault{})
	case soak.LinkStall:
		run.proxy.set(r.c.node(target).ip, linkFault{stall: true})
		time.Sleep(f.For)
		run.proxy.set(r.c.node(target).ip, linkFault{})
	case soak.LinkCut:
		for end := time.Now().Add(f.For); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
			run.proxy.cut(r.c.node(target).ip)
		}
	case soak.ClockJump:
		r.c.kill9(target)
		r.c.start(nodeIndex(target), "--test-clock-offset", f.Offset.String())
		time.Sleep(f.For)
		r.c.kill9(target)
		r.c.start(nodeIndex(target))
	}
	time.Sleep(f.Rest)
}

// replace removes a member (never the region's first node, which seeds
// the gossip pool) and adds a fresh one in its place.
func (run *soakRun) replace(r *soakRegion, f soak.Fault, live []string) {
	var candidates []string
	for _, id := range live {
		if id != r.c.id(1) {
			candidates = append(candidates, id)
		}
	}
	gone := candidates[f.Node%len(candidates)]
	var via string
	for _, id := range live {
		if id != gone {
			via = id
		}
	}
	if out, err := r.c.cliResult("members", "remove", "--addr", r.c.node(via).url(), "--id", gone); err != nil {
		run.t.Logf("nemesis: removing %s refused: %v %s", gone, err, strings.TrimSpace(out))
		time.Sleep(f.For)
		return
	}
	r.c.kill9(gone)
	r.mu.Lock()
	fresh := r.next
	r.next++
	r.live = without(r.live, gone)
	r.mu.Unlock()
	var join []string
	for _, id := range r.members() {
		join = append(join, r.c.joinAddr(id))
	}
	r.c.start(fresh, "--join", strings.Join(join, ","))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := r.c.status(r.c.id(fresh)); err == nil && st.LeaderID != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.mu.Lock()
	r.live = append(r.live, r.c.id(fresh))
	r.mu.Unlock()
	time.Sleep(f.For)
}

// check waits for the regions to converge after the last heal and checks
// the invariants.
func (run *soakRun) check(healed time.Time) soak.Result {
	t := run.t
	var res soak.Result
	for _, r := range run.regions {
		for _, id := range r.members() {
			r.c.waitReady(id)
		}
		acked, revised := r.acked.snapshot(), r.revised.snapshot()
		res.KeysAcknowledged += len(acked)
		res.RevisionsAcknowledged += len(revised)
		for _, id := range r.members() {
			lost, unrevised := run.waitStored(r, id, acked, revised)
			res.KeysLost += lost
			res.RevisionsLost += unrevised
		}
		for _, code := range soak.Reused(r.uses) {
			res.DuplicateCodeUses++
			t.Errorf("%s: code %s admitted %d uploads", r.c.region, code, r.uses[code])
		}
	}
	res.Convergence = time.Since(healed)
	run.checkFiles(&res)
	ok, bad := soak.CheckLinearizable(run.history.Ops(), time.Minute)
	res.Linearizable, res.LinearizabilityCheck = ok, bad
	return res
}

// waitStored waits up to 90 s until a node holds every acknowledged key,
// and every acknowledged revision as revised; it returns how many of each
// it still lacks.
func (run *soakRun) waitStored(r *soakRegion, id string, acked, revised []string) (lost, unrevised int) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		stored, err := r.c.keyStates(id)
		have, haveRevised := map[string]bool{}, map[string]bool{}
		for _, k := range stored {
			have[k.Key], haveRevised[k.Key] = true, k.Revised
		}
		missing, notRevised := soak.Missing(acked, have), soak.Missing(revised, haveRevised)
		if err == nil && len(missing)+len(notRevised) == 0 {
			return 0, 0
		}
		if time.Now().After(deadline) {
			run.t.Errorf("%s/%s lacks %d of %d acknowledged keys (first %v) and %d of %d revisions (first %v); err %v", r.c.region, id,
				len(missing), len(acked), missing[:min(1, len(missing))], len(notRevised), len(revised), notRevised[:min(1, len(notRevised))], err)
			return len(missing), len(notRevised)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkFiles seals once more in every region, waits until every node of
// every region lists the same exports and serves every origin's newest
// batch, and compares the bytes of every file across nodes; every export
// must verify with its region's key, the exports must hold every
// acknowledged key and revision, and every node of the other regions must
// serve them all in the region's federated files.
func (run *soakRun) checkFiles(res *soak.Result) {
	t := run.t
	for _, r := range run.regions {
		run.seal(r)
	}
	for _, r := range run.regions {
		ids := r.members()
		var index []byte
		r.c.waitFor(r.c.region+"'s nodes to list the same exports", 60*time.Second, func() bool {
			_, first, _, err := r.c.tryGet(ids[0], "/v1/exports/index.txt")
			if err != nil {
				return false
			}
			for _, id := range ids[1:] {
				if _, b, _, err := r.c.tryGet(id, "/v1/exports/index.txt"); err != nil || !bytes.Equal(b, first) {
					return false
				}
			}
			index = first
			return true
		})
		digests := map[string]map[string]string{}
		for _, id := range ids {
			digests[id] = map[string]string{}
			for _, name := range strings.Fields(string(index)) {
				status, b, _, err := r.c.tryGet(id, "/"+name)
				if err != nil || status != http.StatusOK {
					t.Errorf("%s/%s does not serve %s it lists: %d %v", r.c.region, id, name, status, err)
					continue
				}
				sum := sha256.Sum256(b)
				digests[id][name] = hex.EncodeToString(sum[:])
				if d, err := export.Decode(b); err != nil || d.Verify(&r.c.exportKey.PublicKey, "test", "v1") != nil {
					t.Errorf("%s/%s serves %s, which does not verify: %v", r.c.region, id, name, err)
				}
			}
		}
		for _, name := range soak.Differing(digests) {
			res.DifferingFiles++
			t.Errorf("%s: nodes serve different bytes for %s", r.c.region, name)
		}
		keys, revised, err := exportedKeys(r.c, ids[0], "/v1/exports/index.txt")
		missing, notRevised := soak.Missing(r.acked.snapshot(), keys), soak.Missing(r.revised.snapshot(), revised)
		if res.KeysNotExported += len(missing) + len(notRevised); len(missing)+len(notRevised) > 0 || err != nil {
			t.Errorf("%s's exports lack %d acknowledged keys and %d revisions (%v)", r.c.region, len(missing), len(notRevised), err)
		}
		run.checkFederated(r)
		res.KeysNotFederated += run.checkFederatedKeys(r)
	}
}

// exportedKeys decodes every file an index lists on a node and returns
// the keys they hold, and those confirmed by a revision: listed among a
// file's revised keys, or, when the revision came before the seal, among
// its keys as confirmed.
func exportedKeys(c *cluster, id, index string) (keys, revised map[string]bool, err error) {
	status, list, _, err := c.tryGet(id, index)
	if err != nil || status != http.StatusOK {
		return nil, nil, fmt.Errorf("%s on %s: %d %v", index, id, status, err)
	}
	keys, revised = map[string]bool{}, map[string]bool{}
	for _, name := range strings.Fields(string(list)) {
		status, b, _, err := c.tryGet(id, "/"+name)
		if err != nil || status != http.StatusOK {
			return nil, nil, fmt.Errorf("%s on %s: %d %v", name, id, status, err)
		}
		d, err := export.Decode(b)
		if err != nil {
			return nil, nil, fmt.Errorf("%s on %s: %w", name, id, err)
		}
		for _, k := range d.File.Keys {
			keys[base64.StdEncoding.EncodeToString(k.Data[:])] = true
			if k.ReportType == export.ReportTypeConfirmedTest {
				revised[base64.StdEncoding.EncodeToString(k.Data[:])] = true
			}
		}
		for _, k := range d.File.RevisedKeys {
			revised[base64.StdEncoding.EncodeToString(k.Data[:])] = true
		}
	}
	return keys, revised, nil
}

// checkFederatedKeys waits up to 60 s until every node of every other
// region serves each acknowledged key of r, and each revision, in r's
// federated files; it returns how many it still lacks.
func (run *soakRun) checkFederatedKeys(r *soakRegion) int {
	acked, revised := r.acked.snapshot(), r.revised.snapshot()
	lacking := 0
	for _, o := range run.regions {
		if o == r {
			continue
		}
		for _, id := range o.members() {
			deadline := time.Now().Add(60 * time.Second)
			for {
				keys, rev, err := exportedKeys(o.c, id, "/v1/regions/"+r.c.region+"/exports/index.txt")
				missing, notRevised := soak.Missing(acked, keys), soak.Missing(revised, rev)
				if err == nil && len(missing)+len(notRevised) == 0 {
					break
				}
				if time.Now().After(deadline) {
					lacking += len(missing) + len(notRevised)
					run.t.Errorf("%s/%s lacks %d acknowledged keys and %d revisions of %s (%v)", o.c.region, id, len(missing), len(notRevised), r.c.region, err)
					break
				}
				time.Sleep(time.Second)
			}
		}
	}
	return lacking
}

// checkFederated waits until every live node of every region serves the
// region's newest own batch, byte-identical to what the region serves.
func (run *soakRun) checkFederated(r *soakRegion) {
	var fed struct {
		Origins []struct {
			Origin  string `json:"origin"`
			LastSeq uint32 `json:"last_seq"`
		} `json:"origins"`
	}
	id := r.members()[0]
	_, b, _ := r.c.get(id, "/v1/federation")
	if err := json.Unmarshal(b, &fed); err != nil || len(fed.Origins) == 0 || fed.Origins[0].Origin != r.c.region {
		run.t.Fatalf("%s/%s federation status: %v %s", r.c.region, id, err, b)
	}
	seq := fed.Origins[0].LastSeq
	if seq == 0 {
		run.t.Errorf("%s sealed no federation batch in the whole run", r.c.region)
		return
	}
	path := fmt.Sprintf("/v1/federation/batches/%s/%d", r.c.region, seq)
	_, want, _ := r.c.get(id, path)
	for _, o := range run.regions {
		for _, oid := range o.members() {
			o.c.waitFor(fmt.Sprintf("%s/%s to serve %s batch %d", o.c.region, oid, r.c.region, seq), 90*time.Second, func() bool {
				status, got, _, _ := o.c.tryGet(oid, path)
				if status == http.StatusOK && !bytes.Equal(got, want) {
					run.t.Fatalf("%s/%s serves %s batch %d altered", o.c.region, oid, r.c.region, seq)
				}
				return status == http.StatusOK
			})
		}
	}
}

// seal asks a region to seal now, as an operator would: an answer that
// asks for a retry (5xx, none) is retried for up to 30 s; nothing to seal
// (409) is fine; anything else is a failure.
func (run *soakRun) seal(r *soakRegion) {
	var status int
	var body []byte
	r.c.waitFor(r.c.region+" to seal", 30*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodPost, r.c.node(r.members()[0]).url()+"/v1/admin/seal", nil)
		req.Header.Set("Authorization", "Bearer "+r.c.token)
		resp, err := r.c.client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		body, _ = io.ReadAll(resp.Body)
		return status < 500
	})
	if status != http.StatusOK && status != http.StatusConflict {
		run.t.Fatalf("%s: seal: %d %s", r.c.region, status, body)
	}
}
