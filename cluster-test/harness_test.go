// Package clustertest starts real covid-node processes on their own
// loopback addresses and data dirs, publishes real signed uploads and breaks
// the region: kill -9, network partitions (iptables), membership changes,
// restarts. Every scenario checks, key by key, that each acknowledged upload
// is on every surviving node.
package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// binary is the covid-node built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "covid-cluster-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "covid-node")
	build := exec.Command("go", "build", "-o", binary, "../cmd/covid-node")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build covid-node:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is one region of real processes.
type cluster struct {
	t         testing.TB
	dir       string
	region    string
	subnet    int // node i listens on 127.0.<subnet>.<i>
	tokenFile string
	token     string
	signer    publish.Signer
	extra     []string
	// nodeFlags, if set, gives flags that differ per node (by its IP).
	nodeFlags func(ip string) []string
	// insecure starts nodes with plaintext raft (--insecure-dev) instead
	// of the region's certificates.
	insecure bool
	client   *http.Client
	// prefix names the nodes (default "n": n1, n2...).
	prefix string
	// binaries, if set, runs a node by id with another build (upgrades).
	binaries map[string]string
	// exportKey is the region's export signing key, where the test made it.
	exportKey *ecdsa.PrivateKey
	// proxy, if set, stands on every member link of the region's nodes
	// (linkproxy_test.go).
	proxy *linkProxy

	mu    sync.Mutex
	nodes map[string]*proc
}

// proc is one covid-node process.
type proc struct {
	id, ip, dataDir, logPath string
	cmd                      *exec.Cmd
	done                     chan struct{}
	exitErr                  error
}

func (p *proc) url() string { return "http://" + p.ip + ":8080" }

var subnets = struct {
	sync.Mutex
	next int
}{next: 10 + os.Getpid()%100}

// freeSubnet picks the next 127.0.S.0/24 whose first node's ports are
// free, so that concurrent test processes do not collide.
func freeSubnet(t testing.TB) int {
	subnets.Lock()
	defer subnets.Unlock()
	for range 200 {
		s := subnets.next
		subnets.next = 10 + (subnets.next-9)%240
		free := true
		for _, port := range []string{":8080", ":7000"} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.%d.1", s)+port)
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return s
		}
	}
	t.Fatal("no free loopback subnet")
	return 0
}

// newCluster prepares a region; extra flags go to every node.
func newCluster(t testing.TB, extra ...string) *cluster {
	t.Helper()
	subnet := freeSubnet(t)
	dir := t.TempDir()
	c := &cluster{
		t: t, dir: dir, subnet: subnet, region: "test", tokenFile: filepath.Join(dir, "admin-token"),
		token: "cluster-test-token-" + randomHex(t, 8), extra: extra,
		client: &http.Client{Timeout: 20 * time.Second}, nodes: map[string]*proc{},
	}
	if err := os.WriteFile(c.tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.signer = publish.Signer{Key: key, Issuer: "ha-test", Audience: "aud-test", Kid: "k1", AppID: "app.test"}
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) ip(i int) string { return fmt.Sprintf("127.0.%d.%d", c.subnet, i) }

// start launches node n<i>; args are extra flags such as --bootstrap.
func (c *cluster) start(i int, args ...string) *proc {
	c.t.Helper()
	id := c.id(i)
	c.mu.Lock()
	p := c.nodes[id]
	if p == nil {
		p = &proc{id: id, ip: c.ip(i), dataDir: filepath.Join(c.dir, id), logPath: filepath.Join(c.dir, id+".log")}
		c.nodes[id] = p
	}
	c.mu.Unlock()
	full := append([]string{"serve", "--node-id", id, "--region", c.region, "--data-dir", p.dataDir,
		"--http-addr", p.ip + ":8080", "--raft-addr", p.ip + ":7000", "--admin-token-file", c.tokenFile,
		"--log-level", "info", "--rate-publish", "0", "--rate-read", "0"}, c.memberFlags(id, p.ip)...)
	if c.proxy != nil {
		c.proxy.listen(p.ip)
		full = append(full, "--raft-advertise", p.ip+":"+proxyPort)
	}
	full = append(full, c.extra...)
	full = append(full, args...)
	if c.nodeFlags != nil {
		full = append(full, c.nodeFlags(p.ip)...)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== start %v\n", full)
	bin := binary
	if b, ok := c.binaries[id]; ok {
		bin = b
	}
	cmd := exec.Command(bin, full...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() {
		p.exitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p
}

// memberFlags gives a node its member credential and the region's code and
// revision token keys, made with the binary's own commands: the region CA
// and keys on first use, then one certificate per node for its IP.
func (c *cluster) memberFlags(id, ip string) []string {
	c.t.Helper()
	if c.insecure {
		return []string{"--insecure-dev"}
	}
	dir := filepath.Join(c.dir, "certs")
	run := func(args ...string) {
		if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
			c.t.Fatalf("covid-node %v: %v\n%s", args, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
		run("certs", "ca", "--dir", dir, "--region", c.region)
		run("keygen", "--secret", "--out", filepath.Join(dir, "code.key"))
		run("keygen", "--secret", "--out", filepath.Join(dir, "revision.key"))
	}
	if _, err := os.Stat(filepath.Join(dir, id+".pem")); err != nil {
		run("certs", "node", "--dir", dir, "--id", id, "--ip", ip)
	}
	return []string{"--tls-ca-file", filepath.Join(dir, "ca.pem"),
		"--tls-cert-file", filepath.Join(dir, id+".pem"), "--tls-key-file", filepath.Join(dir, id+".key"),
		"--code-key-file", filepath.Join(dir, "code.key"), "--revision-key-file", filepath.Join(dir, "revision.key")}
}

// joinAddr is how a joining node names a member: its member port (raft
// address) under TLS, its API URL with plaintext raft.
func (c *cluster) joinAddr(id string) string {
	if c.insecure {
		return c.node(id).url()
	}
	return c.node(id).ip + ":7000"
}

func (c *cluster) node(id string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// kill9 kills a node without warning.
func (c *cluster) kill9(id string) {
	c.t.Helper()
	p := c.node(id)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9 %s: %v", id, err)
	}
	<-p.done
	c.t.Logf("killed -9 %s", id)
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop(id string) {
	c.t.Helper()
	p := c.node(id)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("SIGTERM %s: %v", id, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s did not exit within 30s of SIGTERM", id)
	}
	if p.exitErr != nil {
		c.t.Fatalf("%s exited with %v after SIGTERM; log:\n%s", id, p.exitErr, c.logTail(id))
	}
}

func (c *cluster) running(id string) bool {
	p := c.node(id)
	if p == nil || p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	procs := make([]*proc, 0, len(c.nodes))
	for _, p := range c.nodes {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, p := range procs {
		if p.done == nil {
			continue
		}
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	if c.t.Failed() {
		for _, p := range procs {
			c.t.Logf("--- log of %s:\n%s", p.id, c.logTail(p.id))
		}
	}
}

func (c *cluster) logTail(id string) string {
	b, _ := os.ReadFile(c.node(id).logPath)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

func (c *cluster) logContains(id, s string) bool {
	b, _ := os.ReadFile(c.node(id).logPath)
	return bytes.Contains(b, []byte(s))
}

// waitFor polls cond until it holds or the deadline passes.
func (c *cluster) waitFor(what string, timeout time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status is the part of GET /v1/admin/status the tests read.
type status struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	Keys         int    `json:"keys"`
	// CommandVersion is the newest version every member applies.
	CommandVersion uint32 `json:"command_version"`
	Members        []struct {
		ID string `json:"id"`
	} `json:"members"`
}

func (c *cluster) status(id string) (status, error) {
	var st status
	req, err := http.NewRequest(http.MethodGet, c.node(id).url()+"/v1/admin/status", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// commandVersion is the command version a node says its whole region
// applies (0 when it does not answer).
func (c *cluster) commandVersion(id string) uint32 {
	st, _ := c.status(id)
	return st.CommandVersion
}

// leaderAmong returns the leader id once all the given nodes agree on one
// that is itself among them and says it leads.
func (c *cluster) leaderAmong(ids ...string) string {
	leader := ""
	for _, id := range ids {
		st, err := c.status(id)
		if err != nil || st.LeaderID == "" || (leader != "" && st.LeaderID != leader) {
			return ""
		}
		leader = st.LeaderID
	}
	for _, id := range ids {
		if id == leader {
			if st, err := c.status(id); err == nil && st.State == "Leader" {
				return leader
			}
		}
	}
	return ""
}

func (c *cluster) waitLeader(timeout time.Duration, ids ...string) string {
	c.t.Helper()
	var leader string
	c.waitFor("a leader among "+strings.Join(ids, ","), timeout, func() bool {
		leader = c.leaderAmong(ids...)
		return leader != ""
	})
	return leader
}

func (c *cluster) waitReady(id string) {
	c.t.Helper()
	c.waitFor(id+" ready", 30*time.Second, func() bool {
		resp, err := c.client.Get(c.node(id).url() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// form starts a region of n nodes: n1 bootstraps, the others join through
// the previous node, and the test authority is registered with the CLI.
func (c *cluster) form(n int) {
	c.t.Helper()
	c.start(1, "--bootstrap")
	c.waitReady("n1")
	for i := 2; i <= n; i++ {
		c.start(i, "--join", c.joinAddr(c.id(i-1)))
		c.waitReady(c.id(i))
	}
	ids := c.ids(n)
	c.waitFor(fmt.Sprintf("%d members", n), 30*time.Second, func() bool {
		st, err := c.status("n1")
		return err == nil && len(st.Members) == n
	})
	c.registerAuthority(c.node("n1").url())
	for _, id := range ids {
		c.waitAuthority(id)
	}
	c.waitLeader(10*time.Second, ids...)
}

// id names node i: n<i>, or <prefix><i> for regions whose nodes are named
// otherwise (the compose file's a1, b1...).
func (c *cluster) id(i int) string {
	if c.prefix != "" {
		return fmt.Sprintf("%s%d", c.prefix, i)
	}
	return fmt.Sprintf("n%d", i)
}

func (c *cluster) ids(n int) []string {
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, c.id(i))
	}
	return ids
}

// registerAuthority registers the test health authority through the CLI.
func (c *cluster) registerAuthority(addr string) {
	c.t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&c.signer.Key.PublicKey)
	if err != nil {
		c.t.Fatal(err)
	}
	pemFile := filepath.Join(c.dir, "ha.pub.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.cli("ha", "add", "--addr", addr, "--issuer", c.signer.Issuer, "--audience", c.signer.Audience,
		"--kid", c.signer.Kid, "--public-key-file", pemFile, "--app", c.signer.AppID)
}

// waitAuthority waits until a node's local state knows the test authority
// (followers validate uploads against their own copy).
func (c *cluster) waitAuthority(id string) {
	c.t.Helper()
	c.waitFor(id+" to know the test authority", 10*time.Second, func() bool {
		out, err := c.cliResult("ha", "list", "--addr", c.node(id).url())
		return err == nil && strings.Contains(out, c.signer.Issuer)
	})
}

// adminPost sends an empty admin POST to a node and fails on any non-200;
// a 503 (retry) is sent again for publishRetry, as an operator's script
// would.
func (c *cluster) adminPost(id, path string) {
	c.t.Helper()
	var b []byte
	status := retryUnavailable(publishRetry, func() int {
		req, err := http.NewRequest(http.MethodPost, c.node(id).url()+path, nil)
		if err != nil {
			c.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.client.Do(req)
		if err != nil {
			c.t.Fatalf("POST %s on %s: %v", path, id, err)
		}
		defer resp.Body.Close()
		b, _ = io.ReadAll(resp.Body)
		return resp.StatusCode
	})
	if status != http.StatusOK {
		c.t.Fatalf("POST %s on %s: %d %s", path, id, status, b)
	}
}

// retryUnavailable sends a request again while it is answered 503 (a
// documented retry: no leader, catching up, disk full), for retryFor, as
// a client would; send sends it once and returns the status.
func retryUnavailable(retryFor time.Duration, send func() int) int {
	deadline := time.Now().Add(retryFor)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		status := send()
		if status != http.StatusServiceUnavailable || time.Now().Add(wait).After(deadline) {
			return status
		}
		time.Sleep(wait)
	}
}

// cli runs an operator subcommand with the region's token and fails the
// test if it exits non-zero.
func (c *cluster) cli(args ...string) string {
	c.t.Helper()
	out, err := c.cliResult(args...)
	if err != nil {
		c.t.Fatalf("covid-node %v: %v\n%s", args, err, out)
	}
	return out
}

func (c *cluster) cliResult(args ...string) (string, error) {
	full := append(append([]string{}, args...), "--token-file", c.tokenFile)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, full...).CombinedOutput()
	return string(out), err
}

// upload publishes one signed upload of 14 random keys to a node and
// returns the keys if the node acknowledged them (200 with all inserted).
func (c *cluster) upload(addr string) ([]string, error) {
	return c.uploadFor(addr, publishRetry)
}

// uploadFor is upload retrying a 503 for retryFor; 0 sends once, as the
// load generator does, which moves on to the next node instead.
func (c *cluster) uploadFor(addr string, retryFor time.Duration) ([]string, error) {
	req, err := c.signer.RandomUpload(14, time.Now())
	if err != nil {
		return nil, err
	}
	return c.publishRequestFor(addr, req, retryFor)
}

// publishRetry is how long publishRequest sends an upload again that was
// answered 503 (retry), as an app would: the same body, so that it takes
// effect once.
const publishRetry = 20 * time.Second

// publishRequest publishes an upload to a node and returns its keys if the
// node stored them all; an answer of 503 (no leader, catching up, disk
// full) is retried for publishRetry.
func (c *cluster) publishRequest(addr string, req *publish.Request) ([]string, error) {
	return c.publishRequestFor(addr, req, publishRetry)
}

func (c *cluster) publishRequestFor(addr string, req *publish.Request, retryFor time.Duration) ([]string, error) {
	body, _ := json.Marshal(req)
	var out publish.Response
	var err error
	status := retryUnavailable(retryFor, func() int {
		var resp *http.Response
		if resp, err = c.client.Post(addr+"/v1/publish", "application/json", bytes.NewReader(body)); err != nil {
			return 0
		}
		defer resp.Body.Close()
		out = publish.Response{}
		if err = json.NewDecoder(resp.Body).Decode(&out); err != nil {
			err = fmt.Errorf("decode publish answer (%d): %w", resp.StatusCode, err)
		}
		return resp.StatusCode
	})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK || out.InsertedExposures != len(req.Keys) {
		return nil, fmt.Errorf("publish: %d %s %s (inserted %d)", status, out.Code, out.ErrorMessage, out.InsertedExposures)
	}
	keys := make([]string, len(req.Keys))
	for i, k := range req.Keys {
		keys[i] = k.Key
	}
	return keys, nil
}

// keysOn returns the set of keys a node holds in its local state, sealed
// or not (admin view).
func (c *cluster) keysOn(id string) (map[string]bool, error) {
	keys, err := c.keyStates(id)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(keys))
	for _, k := range keys {
		set[k.Key] = true
	}
	return set, nil
}

// keyState is a stored key as the admin view shows it.
type keyState struct {
	Key     string `json:"key"`
	Revised bool   `json:"revised"`
}

// keyStates returns the keys a node holds in its local state (admin view).
func (c *cluster) keyStates(id string) ([]keyState, error) {
	req, err := http.NewRequest(http.MethodGet, c.node(id).url()+"/v1/admin/keys", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Keys []keyState `json:"keys"`
	}
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// waitHasAll waits until each node serves every acknowledged key, and
// names the first missing key if one never arrives.
func (c *cluster) waitHasAll(acked *ackSet, timeout time.Duration, ids ...string) {
	c.t.Helper()
	want := acked.snapshot()
	if len(want) == 0 {
		c.t.Fatal("no upload was acknowledged: the scenario tested nothing")
	}
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for {
			missing := c.firstMissing(id, want)
			if missing == "" {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s lacks acknowledged key %s (of %d acknowledged)", id, missing, len(want))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (c *cluster) firstMissing(id string, want []string) string {
	have, err := c.keysOn(id)
	if err != nil {
		return "(unreachable: " + err.Error() + ")"
	}
	for _, k := range want {
		if !have[k] {
			return k
		}
	}
	return ""
}

// ackSet collects acknowledged keys across goroutines.
type ackSet struct {
	mu   sync.Mutex
	keys []string
}

func (a *ackSet) add(keys []string) {
	a.mu.Lock()
	a.keys = append(a.keys, keys...)
	a.mu.Unlock()
}

func (a *ackSet) snapshot() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.keys...)
}

func (a *ackSet) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.keys)
}

// load uploads continuously, round robin over the given nodes, from a few
// workers, recording what was acknowledged; stop ends it and waits.
type load struct {
	acked *ackSet
	stop  func()
}

func (c *cluster) startLoad(workers int, targets func() []string) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{acked: &ackSet{}}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				ids := targets()
				if len(ids) == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				id := ids[i%len(ids)]
				if keys, err := c.uploadFor(c.node(id).url(), 0); err == nil {
					l.acked.add(keys)
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	l.stop = func() { cancel(); wg.Wait() }
	return l
}

// postJSON posts JSON to url, with an API key if one is given, and
// decodes the JSON answer.
func postJSON(client *http.Client, url, key string, body any) (int, map[string]any, error) {
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
