package clustertest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkUploadCPU measures the CPU a 3-node region (raft over mutual
// TLS, fsync on every commit) spends per acknowledged upload, all three
// processes together from /proc, against a sink (cluster-test/sink) that
// decodes and verifies the same uploads and stores nothing. Uploads go
// spread over the three nodes, as apps send them, or to the leader only;
// 16 and 64 clients. Reported: region-cpu-us/upload (and the leader's
// share, leader-cpu-us/upload), sink-cpu-us/upload, their ratio (target
// 1.5), the kernel's part of both (region-sys-, sink-sys-cpu-us/upload),
// uploads per raft round on the leader (uploads/round), and uploads/s, p50
// and p99 of both. CPU time does not depend on
// how busy the machine is; the rates do. make bench.
func BenchmarkUploadCPU(b *testing.B) {
	c := newCluster(b)
	c.form(3)
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	sinkURL, sinkPID := startSink(b, c)
	// Warm both up (connections, TLS sessions, the heap) before measuring.
	warm := signedBodies(b, c, 1000)
	postUploads(b, []string{sinkURL}, 16, warm)
	postUploads(b, []string{c.node("n1").url(), c.node("n2").url(), c.node("n3").url()}, 16, warm)
	pids := func() []int { // the leader's first
		out := []int{c.node(leader).cmd.Process.Pid}
		for _, id := range without(c.ids(3), leader) {
			out = append(out, c.node(id).cmd.Process.Pid)
		}
		return out
	}
	for _, tc := range []struct {
		clients int
		spread  bool
	}{{16, true}, {64, true}, {16, false}, {64, false}} {
		to := "leader"
		urls := []string{c.node(leader).url()}
		if tc.spread {
			to = "spread"
			urls = []string{c.node("n1").url(), c.node("n2").url(), c.node("n3").url()}
		}
		b.Run(fmt.Sprintf("clients=%d/%s", tc.clients, to), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				bodies := signedBodies(b, c, 6000)
				sinkCPU, sinkSys, sinkRun := cpuOf(b, []int{sinkPID}, func() uploadRun { return postUploads(b, []string{sinkURL}, tc.clients, bodies) })
				b.StartTimer()
				stopProfiles := c.profileIfAsked(b, fmt.Sprintf("cpu-clients%d-%s", tc.clients, to))
				rounds := -c.metricValue(leader, "covid_raft_round_commands_count")
				nodeCPU, regionSys, regionRun := cpuOf(b, pids(), func() uploadRun { return postUploads(b, urls, tc.clients, bodies) })
				rounds += c.metricValue(leader, "covid_raft_round_commands_count")
				stopProfiles()
				b.StopTimer()
				perUpload := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(len(bodies)) }
				perRegion, perSink := perUpload(nodeCPU[0]+nodeCPU[1]+nodeCPU[2]), perUpload(sinkCPU[0])
				b.ReportMetric(perRegion, "region-cpu-us/upload")
				b.ReportMetric(perUpload(nodeCPU[0]), "leader-cpu-us/upload")
				b.ReportMetric(perSink, "sink-cpu-us/upload")
				b.ReportMetric(perRegion/perSink, "cpu-ratio")
				b.ReportMetric(perUpload(regionSys), "region-sys-cpu-us/upload")
				b.ReportMetric(perUpload(sinkSys), "sink-sys-cpu-us/upload")
				b.ReportMetric(float64(len(bodies))/rounds, "uploads/round")
				regionRun.report(b, "region-")
				sinkRun.report(b, "sink-")
				b.StartTimer()
			}
		})
	}
}

// cpuOf runs load and returns the CPU each process spent meanwhile, and
// the part of it all of them spent in the kernel.
func cpuOf(b *testing.B, pids []int, load func() uploadRun) ([]time.Duration, time.Duration, uploadRun) {
	spent := make([]time.Duration, len(pids))
	var sys time.Duration
	for i, pid := range pids {
		u, s := procTimes(pid)
		spent[i], sys = -u-s, sys-s
	}
	run := load()
	for i, pid := range pids {
		u, s := procTimes(pid)
		spent[i], sys = spent[i]+u+s, sys+s
	}
	return spent, sys, run
}

// startSink builds and starts the sink on an unused address of the
// cluster's subnet, trusting the cluster's test authority; it returns the
// sink's URL and pid.
func startSink(b *testing.B, c *cluster) (string, int) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "sink")
	if out, err := exec.Command("go", "build", "-o", bin, "./sink").CombinedOutput(); err != nil {
		b.Fatalf("build sink: %v\n%s", err, out)
	}
	der, err := x509.MarshalPKIXPublicKey(&c.signer.Key.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	pemFile := filepath.Join(dir, "ha.pub.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		b.Fatal(err)
	}
	addr := c.ip(9) + ":8080"
	cmd := exec.Command(bin, "--addr", addr, "--issuer", c.signer.Issuer, "--audience", c.signer.Audience,
		"--kid", c.signer.Kid, "--app", c.signer.AppID, "--public-key-file", pemFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr
	c.waitFor("the sink to listen", 10*time.Second, func() bool {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return url, cmd.Process.Pid
}

// BenchmarkIdleRegion reports what a formed 3-node region with nothing to
// do costs in CPU a second: the leader tells its followers its commit
// index every commitTimeout (node/node.go) and heartbeats them, the
// members agree on their clocks, gossip nothing. Run with: make bench.
func BenchmarkIdleRegion(b *testing.B) {
	c := newCluster(b)
	c.form(3)
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	pids := []int{c.node(leader).cmd.Process.Pid}
	for _, id := range without(c.ids(3), leader) {
		pids = append(pids, c.node(id).cmd.Process.Pid)
	}
	const window = 10 * time.Second
	for range b.N {
		spent, _, _ := cpuOf(b, pids, func() uploadRun { time.Sleep(window); return uploadRun{} })
		b.ReportMetric(float64(spent[0])/float64(window)*1000, "leader-cpu-ms/s")
		b.ReportMetric(float64(spent[1]+spent[2])/2/float64(window)*1000, "follower-cpu-ms/s")
	}
}
