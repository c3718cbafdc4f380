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

// composeRegion is one region of the compose file as the harness sees it:
// its nodes (a1..a3 or b1..b3) at their API addresses on the shared
// network.
func composeRegion(t *testing.T, name, secrets string, n int) *cluster {
	c := newCluster(t)
	c.region, c.prefix = strings.ToUpper(name), name
	c.tokenFile = filepath.Join(secrets, name, "admin-token")
	tok, err := os.ReadFile(c.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c.token = strings.TrimSpace(string(tok))
	for i := 1; i <= 3; i++ {
		c.nodes[c.id(i)] = &proc{id: c.id(i), ip: fmt.Sprintf("172.31.3.%d%d", n, i)}
	}
	return c
}

// The shipped compose file on the Docker engine: two federated regions of
// three nodes, made with the project's own commands (deploy/compose/setup.sh).
// An upload through A reaches B's copy of A's exports; A's leader killed
// under load loses nothing; B cut off from the shared network and put back
// catches up; a rolling restart of A, one container at a time, loses
// nothing. Skipped where no Docker engine runs.
func TestComposeFederation(t *testing.T) {
	if exec.Command("docker", "info").Run() != nil {
		t.Skip("no Docker engine runs here: the compose test is skipped")
	}
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not found: the compose test is skipped")
	}
	tag := fmt.Sprintf("covid-backend:compose-%d", os.Getpid())
	if out, err := exec.Command("make", "-C", "..", "image", "IMAGE="+tag).CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	secrets := filepath.Join(t.TempDir(), "secrets")
	setup := exec.Command("../deploy/compose/setup.sh")
	setup.Env = append(os.Environ(), "COVID_NODE="+binary, "SECRETS="+secrets)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("setup.sh: %v\n%s", err, out)
	}
	project := fmt.Sprintf("covidcompose%d", os.Getpid())
	dc := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(compose, append([]string{"-p", project, "-f", "../deploy/compose/docker-compose.yml"}, args...)...)
		cmd.Env = append(os.Environ(), "IMAGE="+tag, "SECRETS="+secrets)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(dc("logs", "--tail", "30"))
		}
		dc("down", "-v")
	})
	dc("up", "-d")
	a, b := composeRegion(t, "a", secrets, 1), composeRegion(t, "b", secrets, 2)
	for _, r := range []*cluster{a, b} {
		for _, id := range r.ids(3) {
			r.waitReady(id)
		}
		r.registerAuthority(r.node(r.id(1)).url())
		r.waitAuthority(r.id(3))
	}
	for _, pair := range [][2]*cluster{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		name := strings.ToLower(to.region)
		from.cli("trust", "add", "--addr", from.node(from.id(1)).url(), "--region", to.region, "--key-id", to.region+"-1",
			"--public-key-file", filepath.Join(secrets, name, "federation.pub.pem"))
	}

	// An upload through A, sealed, reaches every node of B.
	took := waitBatchEverywhere(t, []*cluster{b}, "A", 1, a.sealSigned(1))
	t.Logf("A's batch 1 on every node of B after %v", took.Round(time.Millisecond))

	// A's leader killed under load: nothing acknowledged is lost.
	leader := a.waitLeader(20*time.Second, a.ids(3)...)
	service := leader
	l := a.startLoad(4, func() []string {
		var up []string
		for _, id := range a.ids(3) {
			if id != leader {
				up = append(up, id)
			}
		}
		return up
	})
	a.waitFor("uploads", 20*time.Second, func() bool { return l.acked.len() >= 140 })
	dc("kill", service)
	n := l.acked.len()
	a.waitFor("uploads after the leader's container died", 60*time.Second, func() bool { return l.acked.len() >= n+140 })
	l.stop()
	dc("start", service)
	a.waitHasAll(l.acked, 60*time.Second, a.ids(3)...)

	// B cut off from the shared network: A seals; B back catches up.
	for i := 1; i <= 3; i++ {
		docker(t, "network", "disconnect", project+"_federation", fmt.Sprintf("%s_b%d_1", project, i))
	}
	second := a.sealSigned(2)
	for i := 1; i <= 3; i++ {
		if out, err := exec.Command("docker", "network", "connect", "--ip", fmt.Sprintf("172.31.3.2%d", i), project+"_federation",
			fmt.Sprintf("%s_b%d_1", project, i)).CombinedOutput(); err != nil {
			t.Fatalf("reconnect b%d: %v %s", i, err, out)
		}
	}
	took = waitBatchEverywhere(t, []*cluster{b}, "A", 2, second)
	t.Logf("B, back on the network, caught up with A's batch 2 after %v", took.Round(time.Millisecond))

	// A rolling restart of A under load, one container at a time.
	l = a.startLoad(4, func() []string { return a.ids(3) })
	var gaps []time.Duration
	for i := 1; i <= 3; i++ {
		before, at := l.acked.len(), time.Now()
		dc("restart", fmt.Sprintf("a%d", i))
		a.waitReady(a.id(i))
		a.waitFor("uploads after restarting a node", 60*time.Second, func() bool { return l.acked.len() > before+14 })
		gaps = append(gaps, time.Since(at).Round(time.Millisecond))
	}
	l.stop()
	a.waitHasAll(l.acked, 60*time.Second, a.ids(3)...)
	t.Logf("rolling restart of A: %d keys acknowledged and on every node; per restart, until uploads went on: %v", l.acked.len(), gaps)
}
