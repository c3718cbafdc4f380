package clustertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
)

// nginxPath finds Debian's nginx (in /usr/sbin, which a non-root PATH may
// leave out).
func nginxPath() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/nginx")
}

// BenchmarkDownloadVsNginx compares how fast a node serves an export file
// and index.txt with how fast nginx serves the same bytes from disk: a
// 1-node region seals a few uploads (padded to --seal-min-keys), the
// first file of its index and the index are copied into a directory nginx
// serves on another loopback address, and wrk (-t2 -c64 -d10s,
// keep-alive) loads one server after the other. The node runs with its
// metrics and a read rate limit that is checked but does not bind (one
// client address here). Targets: ours >= 0.8 x nginx's requests per
// second (ratio) and <= 1.5 x its CPU per request (cpu-ratio). Needs the
// Debian packages nginx and wrk (make bench installs them).
//
// Both servers, wrk and this test share the machine's cores. Two runs:
// "shared" leaves every process free to use every core (nginx with
// worker_processes auto, the node with GOMAXPROCS = cores); "pinned" puts
// the server under test on CPU 0 only and wrk on CPU 1 (nginx with one
// worker), on machines with at least two cores. server-cpu and wrk-cpu
// report the cores each used on average during its run.
func BenchmarkDownloadVsNginx(b *testing.B) {
	nginxBin, err1 := nginxPath()
	wrkBin, err2 := exec.LookPath("wrk")
	if err1 != nil || err2 != nil {
		b.Skip("needs nginx and wrk (Debian packages nginx and wrk; `make bench` installs them)")
	}

	keyDir := b.TempDir()
	key, flags := benchExportKey(b, keyDir)
	c := newCluster(b, append(flags, "--rate-read", "1000000", "--rate-read-burst", "1000000")...)
	c.form(1)
	for i := range 5 {
		if _, err := c.upload(c.node("n1").url()); err != nil {
			b.Fatalf("upload %d: %v", i, err)
		}
	}
	c.adminPost("n1", "/v1/admin/seal")
	status, index, _ := c.get("n1", "/v1/exports/index.txt")
	names := strings.Fields(string(index))
	if status != http.StatusOK || len(names) == 0 {
		b.Fatalf("index: %d %q", status, index)
	}
	path := "/" + names[0]
	status, data, _ := c.get("n1", path)
	if status != http.StatusOK {
		b.Fatalf("GET %s: %d", path, status)
	}
	d, err := export.Decode(data)
	if err != nil || d.Verify(&key.PublicKey, "test", "v1") != nil {
		b.Fatalf("%s does not verify: %v", path, err)
	}
	b.Logf("file %s: %d bytes, %d keys", path, len(data), len(d.File.Keys))

	www := filepath.Join(b.TempDir(), "www")
	if err := os.MkdirAll(filepath.Dir(filepath.Join(www, path)), 0o755); err != nil {
		b.Fatal(err)
	}
	for name, content := range map[string][]byte{path: data, "/v1/exports/index.txt": index} {
		if err := os.WriteFile(filepath.Join(www, name), content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	nodePID := c.node("n1").cmd.Process.Pid

	for _, run := range []struct {
		name, path string
		pinned     bool
	}{{"file/shared", path, false}, {"file/pinned", path, true}, {"index/shared", "/v1/exports/index.txt", false}, {"index/pinned", "/v1/exports/index.txt", true}} {
		name, pinned, path := run.name, run.pinned, run.path
		ours, want := c.node("n1").url()+path, data
		if strings.HasPrefix(name, "index") {
			want = index
		}
		b.Run(name, func(b *testing.B) {
			if pinned && cpuCount() < 2 {
				b.Skip("pinning needs two cores")
			}
			workers, serverCPU, wrkCPU := "auto", "", ""
			if pinned {
				workers, serverCPU, wrkCPU = "1", "0", "1"
				pin(b, nodePID, "0")
				b.Cleanup(func() { pin(b, nodePID, fmt.Sprintf("0-%d", cpuCount()-1)) })
			}
			// Port 8080 of an unused address of this cluster's subnet.
			nginxAddr := c.ip(9) + ":8080"
			nginxPID := startNginx(b, nginxBin, www, nginxAddr, workers, serverCPU)
			theirs := "http://" + nginxAddr + path
			if got := fetch(b, theirs); !bytes.Equal(got, want) {
				b.Fatalf("nginx serves %d bytes that differ from the node's %d", len(got), len(want))
			}
			for range b.N {
				profiled := profileNodeIfAsked(b, c, "n1", "download-"+strings.ReplaceAll(name, "/", "-"))
				our := runWrk(b, wrkBin, ours, wrkCPU, nodePID)
				profiled()
				their := runWrk(b, wrkBin, theirs, wrkCPU, nginxPID)
				b.Logf("ours:  %s", our)
				b.Logf("nginx: %s", their)
				b.ReportMetric(our.rps, "ours-req/s")
				b.ReportMetric(their.rps, "nginx-req/s")
				b.ReportMetric(our.rps/their.rps, "ratio")
				b.ReportMetric(our.p50ms, "ours-p50-ms")
				b.ReportMetric(their.p50ms, "nginx-p50-ms")
				b.ReportMetric(our.p99ms, "ours-p99-ms")
				b.ReportMetric(their.p99ms, "nginx-p99-ms")
				b.ReportMetric(our.cpuPerRequest(), "ours-cpu-us/req")
				b.ReportMetric(their.cpuPerRequest(), "nginx-cpu-us/req")
				b.ReportMetric(our.cpuPerRequest()/their.cpuPerRequest(), "cpu-ratio")
				b.ReportMetric(our.serverCPU, "ours-server-cpu")
				b.ReportMetric(their.serverCPU, "nginx-server-cpu")
				b.ReportMetric(our.wrkCPU, "ours-wrk-cpu")
				b.ReportMetric(their.wrkCPU, "nginx-wrk-cpu")
				b.ReportMetric(float64(len(want)), "bytes")
			}
		})
	}
}

// profileNodeIfAsked fetches a 5-second CPU profile of a node while the
// load runs, into $COVID_BENCH_PROFILE_DIR when it is set.
func profileNodeIfAsked(b *testing.B, c *cluster, id, label string) (wait func()) {
	dir := os.Getenv("COVID_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(2 * time.Second) // past wrk's connection set-up
		req, _ := http.NewRequest(http.MethodGet, c.node(id).url()+"/debug/pprof/profile?seconds=5", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			b.Logf("profile %s: %v", id, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, label+"-"+id+".pprof"))
		if err != nil {
			b.Logf("profile %s: %v", id, err)
			return
		}
		defer f.Close()
		io.Copy(f, resp.Body)
	}()
	return func() { <-done }
}

// benchExportKey writes a region export key, as exportKey does for tests.
func benchExportKey(tb testing.TB, dir string) (*ecdsa.PrivateKey, []string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(dir, "export-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return key, []string{"--export-key-file", path, "--export-key-id", "test", "--export-key-version", "v1"}
}

// startNginx serves root on addr with a minimal configuration, in the
// foreground, until the benchmark ends; cpus, if set, pins it (taskset -c).
// It returns the master's pid.
func startNginx(b *testing.B, bin, root, addr, workers, cpus string) int {
	b.Helper()
	dir := b.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the 0700 temp dirs
	}
	conf := fmt.Sprintf(`daemon off;
%s
worker_processes %s;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    types { application/zip zip; }
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen %[4]s;
        root %[5]s;
    }
}
`, user, workers, dir, addr, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // graceful stop
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return cmd.Process.Pid
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx exited: %s\n%s", out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("nginx not answering on %s after 10s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetch(b *testing.B, url string) []byte {
	b.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return data
}

// wrkResult is what one wrk run measured.
type wrkResult struct {
	rps, p50ms, p99ms float64
	// serverCPU and wrkCPU are the cores the server (with its child
	// processes) and wrk used on average over the run.
	serverCPU, wrkCPU float64
}

// cpuPerRequest is the server's CPU time per request, in microseconds.
func (r wrkResult) cpuPerRequest() float64 { return r.serverCPU * 1e6 / r.rps }

func (r wrkResult) String() string {
	return fmt.Sprintf("%.0f req/s, p50 %.2f ms, p99 %.2f ms, server %.2f cores, wrk %.2f cores",
		r.rps, r.p50ms, r.p99ms, r.serverCPU, r.wrkCPU)
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPercent = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Non-2xx or 3xx responses|Socket errors`)
)

// runWrk loads url for 10 s with 2 threads and 64 connections; cpus, if
// set, pins wrk. serverPID is the process whose CPU time (and that of its
// children) is measured over the run.
func runWrk(b *testing.B, bin, url, cpus string, serverPID int) wrkResult {
	b.Helper()
	args := []string{bin, "-t2", "-c64", "-d10s", "--latency", url}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	before, start := treeCPU(serverPID), time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start).Seconds()
	server := treeCPU(serverPID) - before
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	if wrkErrors.Match(out) {
		b.Fatalf("wrk %s reported errors:\n%s", url, out)
	}
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		b.Fatalf("no Requests/sec in wrk output:\n%s", out)
	}
	r := wrkResult{serverCPU: server.Seconds() / wall}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, p := range wrkPercent.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(p[2]), 64)
		switch string(p[3]) {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if string(p[1]) == "50" {
			r.p50ms = v
		} else {
			r.p99ms = v
		}
	}
	if ps := cmd.ProcessState; ps != nil {
		r.wrkCPU = (ps.UserTime() + ps.SystemTime()).Seconds() / wall
	}
	return r
}

// treeCPU is the user+system CPU time of pid and its direct children
// (nginx workers), from /proc.
func treeCPU(pid int) time.Duration {
	total := procCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := procField(child, 1); ok && ppid == pid {
			total += procCPU(child)
		}
	}
	return total
}

func procCPU(pid int) time.Duration {
	user, sys := procTimes(pid)
	return user + sys
}

// procTimes is the CPU time a process spent in user space and in the
// kernel (0 for a process gone).
func procTimes(pid int) (user, sys time.Duration) {
	utime, ok1 := procField(pid, 11)
	stime, ok2 := procField(pid, 12)
	if !ok1 || !ok2 {
		return 0, 0
	}
	return time.Duration(utime) * time.Second / 100, time.Duration(stime) * time.Second / 100 // USER_HZ
}

// procField reads field i of /proc/pid/stat counted after the command
// name (0 is the state, 1 the parent pid, 11 utime, 12 stime).
func procField(pid, i int) (int, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	rest := raw[bytes.LastIndexByte(raw, ')')+1:]
	fields := strings.Fields(string(rest))
	if i >= len(fields) {
		return 0, false
	}
	v, err := strconv.Atoi(fields[i])
	return v, err == nil
}

// pin restricts every thread of pid to cpus (taskset -a -p -c).
func pin(b *testing.B, pid int, cpus string) {
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		b.Fatalf("taskset %d to %s: %v\n%s", pid, cpus, err, out)
	}
}

func cpuCount() int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			n := 0
			for _, part := range strings.Split(strings.TrimSpace(v), ",") {
				lo, hi, found := strings.Cut(part, "-")
				a, _ := strconv.Atoi(lo)
				z := a
				if found {
					z, _ = strconv.Atoi(hi)
				}
				n += z - a + 1
			}
			return n
		}
	}
	return 1
}
