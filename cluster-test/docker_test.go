package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docker runs a docker command and fails the test with its output.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// A 3-node region in containers of the project's image (make image: FROM
// scratch, non-root, healthcheck) on its own Docker network: the
// containers become healthy, the region takes uploads, its leader's
// container is killed under load and every acknowledged key survives on
// every node once it is back. Skipped where no Docker engine runs.
func TestRegionInContainers(t *testing.T) {
	if exec.Command("docker", "info").Run() != nil {
		t.Skip("no Docker engine runs here: the container test is skipped")
	}
	tag := fmt.Sprintf("covid-backend:test-%d", os.Getpid())
	if out, err := exec.Command("make", "-C", "..", "image", "IMAGE="+tag).CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	subnet := 100 + os.Getpid()%100
	network := fmt.Sprintf("covidtest%d", os.Getpid())
	docker(t, "network", "create", "--subnet", fmt.Sprintf("172.30.%d.0/24", subnet), network)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", network).Run() })

	c := newCluster(t)
	cfg := filepath.Join(c.dir, "config")
	run := func(args ...string) {
		if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
			t.Fatalf("covid-node %v: %v %s", args, err, out)
		}
	}
	run("certs", "ca", "--dir", cfg, "--region", c.region)
	run("keygen", "--secret", "--out", filepath.Join(cfg, "code.key"))
	run("keygen", "--secret", "--out", filepath.Join(cfg, "revision.key"))
	writeFile(t, filepath.Join(cfg, "token"), []byte(c.token+"\n"))
	os.Chmod(filepath.Join(cfg, "token"), 0o600)
	ip := func(i int) string { return fmt.Sprintf("172.30.%d.%d", subnet, 10+i) }
	for i := 1; i <= 3; i++ {
		run("certs", "node", "--dir", cfg, "--id", fmt.Sprintf("n%d", i), "--ip", ip(i))
	}
	// The node runs as 65532 in the container and reads only its own files.
	filepath.Walk(cfg, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, 65532, 65532) })
	start := func(i int, args ...string) {
		id := fmt.Sprintf("n%d", i)
		name := network + "-" + id
		full := []string{"run", "-d", "--name", name, "--network", network, "--ip", ip(i), "-e", "COVID_API_URL=http://" + ip(i) + ":8080",
			"-v", name + ":/data", "-v", cfg + ":/config:ro", tag, "serve", "--node-id", id, "--region", c.region,
			"--data-dir", "/data", "--http-addr", ip(i) + ":8080", "--raft-addr", ip(i) + ":7000",
			"--admin-token-file", "/config/token", "--rate-publish", "0", "--rate-read", "0",
			"--tls-ca-file", "/config/ca.pem", "--tls-cert-file", "/config/" + id + ".pem", "--tls-key-file", "/config/" + id + ".key",
			"--code-key-file", "/config/code.key", "--revision-key-file", "/config/revision.key"}
		docker(t, append(full, args...)...)
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := exec.Command("docker", "logs", "--tail", "40", name).CombinedOutput()
				t.Logf("--- log of container %s:\n%s", name, out)
			}
			exec.Command("docker", "rm", "-f", name).Run()
			exec.Command("docker", "volume", "rm", "-f", name).Run()
		})
		c.mu.Lock()
		c.nodes[id] = &proc{id: id, ip: ip(i)}
		c.mu.Unlock()
	}
	start(1, "--bootstrap")
	c.waitReady("n1")
	for i := 2; i <= 3; i++ {
		start(i, "--join", ip(1)+":7000")
		c.waitReady(fmt.Sprintf("n%d", i))
	}
	c.registerAuthority(c.node("n1").url())
	for _, id := range c.ids(3) {
		c.waitAuthority(id)
		c.waitFor(id+"'s container to be healthy", 60*time.Second, func() bool {
			return docker(t, "inspect", "-f", "{{.State.Health.Status}}", network+"-"+id) == "healthy"
		})
	}
	if user := docker(t, "inspect", "-f", "{{.Config.User}}", network+"-n1"); user != "65532:65532" {
		t.Fatalf("the container runs as %q, want the non-root 65532", user)
	}

	leader := c.waitLeader(20*time.Second, c.ids(3)...)
	l := c.startLoad(4, func() []string {
		var up []string
		for _, id := range c.ids(3) {
			if id != leader {
				up = append(up, id)
			}
		}
		return up
	})
	c.waitFor("uploads", 20*time.Second, func() bool { return l.acked.len() >= 140 })
	docker(t, "kill", network+"-"+leader)
	t.Logf("killed the container of leader %s", leader)
	n := l.acked.len()
	c.waitFor("uploads under the new leader", 30*time.Second, func() bool { return l.acked.len() >= n+140 })
	l.stop()
	docker(t, "start", network+"-"+leader)
	c.waitHasAll(l.acked, 60*time.Second, c.ids(3)...)
	t.Logf("%d keys acknowledged, all on every node after %s came back", l.acked.len(), leader)
}
