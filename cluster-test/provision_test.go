package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// debianImage is the image of a Debian root made by debootstrap with
// systemd as its init, for testing the provisioning script on the system
// it is written for. It is built once per Docker engine and kept.
const debianImage = "covid-test-debian:bookworm"

// ensureDebianImage builds debianImage unless the engine has it; it skips
// the test with a clear message where no engine runs or debootstrap is
// missing (.ci/run installs it).
func ensureDebianImage(t *testing.T) {
	t.Helper()
	if exec.Command("docker", "info").Run() != nil {
		t.Skip("no Docker engine runs here: the provisioning test is skipped")
	}
	if exec.Command("docker", "image", "inspect", debianImage).Run() == nil {
		return
	}
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		t.Skip("debootstrap not found (apt-get install debootstrap): the provisioning test is skipped")
	}
	mirror := os.Getenv("COVID_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	root := filepath.Join(t.TempDir(), "root")
	start := time.Now()
	if out, err := exec.Command(debootstrap, "--variant=minbase", "--include=systemd,systemd-sysv,passwd,ca-certificates",
		"bookworm", root, mirror).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, tail(out, 2000))
	}
	imp := exec.Command("sh", "-c", `tar -C "$1" -c . | docker import -c 'CMD ["/sbin/init"]' - "$2"`, "sh", root, debianImage)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import of the Debian root: %v\n%s", err, out)
	}
	t.Logf("made %s from a debootstrapped bookworm root in %v", debianImage, time.Since(start).Round(time.Second))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// machine is one container of debianImage running systemd, standing in
// for a VM of the Vagrantfile.
type machine struct {
	t    *testing.T
	name string
}

// exec runs a command on the machine and fails the test on error.
func (m machine) exec(args ...string) string {
	m.t.Helper()
	out, err := m.try(args...)
	if err != nil {
		m.t.Fatalf("on %s, %s: %v\n%s", m.name, strings.Join(args, " "), err, out)
	}
	return out
}

func (m machine) try(args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"exec", m.name}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// show reads one property of the node's unit.
func (m machine) show(prop string) string {
	m.t.Helper()
	return strings.TrimPrefix(m.exec("systemctl", "show", "-p", prop, "covid-node"), prop+"=")
}

// booted waits until systemd on the machine has finished starting up.
func (m machine) booted(c *cluster) {
	c.t.Helper()
	c.waitFor(m.name+"'s systemd to finish booting", 60*time.Second, func() bool {
		out, _ := m.try("systemctl", "is-system-running")
		return out == "running" || out == "degraded"
	})
}

// The Vagrant provisioning script, run on three machines of a
// debootstrapped Debian root with systemd as PID 1 (containers standing
// in for the Vagrantfile's VMs): it installs the binary, the unit and the
// region's secrets, starts the node under systemd and joins the region.
// The unit's sandbox holds (the node runs as covid-node, systemd rates
// its exposure OK); uploads go through; a node killed by SIGKILL is
// restarted by systemd, a stopped one drains and exits cleanly, and a
// machine that loses power starts its node again on boot; every
// acknowledged key is on every node at the end.
func TestProvisionedRegionUnderSystemd(t *testing.T) {
	ensureDebianImage(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	subnet := 100 + (os.Getpid()+37)%100
	network := fmt.Sprintf("covidprov%d", os.Getpid())
	docker(t, "network", "create", "--subnet", fmt.Sprintf("172.29.%d.0/24", subnet), network)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", network).Run() })
	secrets := t.TempDir()
	c := newCluster(t)
	c.prefix, c.region = "a", "A"
	c.tokenFile = filepath.Join(secrets, "a", "admin-token")

	ip := func(i int) string { return fmt.Sprintf("172.29.%d.%d", subnet, 10+i) }
	machines := map[string]machine{}
	for i := 1; i <= 3; i++ {
		id := c.id(i)
		m := machine{t: t, name: network + "-" + id}
		machines[id] = m
		docker(t, "run", "-d", "--name", m.name, "--hostname", id, "--network", network, "--ip", ip(i),
			"--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
			"-v", repo+":/vagrant:ro", "-v", binary+":/opt/covid-node:ro", "-v", secrets+":/secrets", debianImage)
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := m.try("journalctl", "-u", "covid-node", "-n", "40", "--no-pager")
				t.Logf("--- journal of %s:\n%s", m.name, out)
			}
			exec.Command("docker", "rm", "-f", m.name).Run()
		})
		c.mu.Lock()
		c.nodes[id] = &proc{id: id, ip: ip(i)}
		c.mu.Unlock()
	}
	for i := 1; i <= 3; i++ {
		id := c.id(i)
		m := machines[id]
		m.booted(c)
		out := m.exec("env", "BIN=/opt/covid-node", "SECRETS=/secrets", "sh", "/vagrant/deploy/vagrant/provision.sh",
			"a", id, ip(i), ip(1), ip(1))
		t.Logf("%s: %s", m.name, out[strings.LastIndex(out, "\n")+1:])
		c.waitReady(id)
	}
	token, err := os.ReadFile(c.tokenFile)
	if err != nil {
		t.Fatalf("the script made no admin token: %v", err)
	}
	c.token = strings.TrimSpace(string(token))
	ids := c.ids(3)
	c.waitFor("3 members", 30*time.Second, func() bool {
		st, err := c.status(ids[0])
		return err == nil && len(st.Members) == 3
	})
	checkSandbox(t, c, machines[ids[1]])

	c.registerAuthority(c.node(ids[0]).url())
	for _, id := range ids {
		c.waitAuthority(id)
	}
	leader := c.waitLeader(20*time.Second, ids...)
	l := c.startLoad(2, func() []string { return ids })
	c.waitFor("uploads", 60*time.Second, func() bool { return l.acked.len() >= 14*5 })

	// SIGKILL of the leader's process: systemd restarts it (Restart=on-failure).
	lm := machines[leader]
	restarts := lm.show("NRestarts")
	lm.exec("systemctl", "kill", "--signal=SIGKILL", "covid-node")
	c.waitFor("systemd to restart the killed node on "+leader, 30*time.Second, func() bool {
		out, _ := lm.try("systemctl", "show", "-p", "NRestarts", "--value", "covid-node")
		return out != restarts
	})
	c.waitReady(leader)
	n := l.acked.len()
	c.waitFor("uploads after the restart", 60*time.Second, func() bool { return l.acked.len() >= n+14*5 })

	// A stop drains and exits cleanly: inactive, not failed, status 0.
	follower := ids[0]
	if follower == c.waitLeader(20*time.Second, ids...) {
		follower = ids[1]
	}
	fm := machines[follower]
	fm.exec("systemctl", "stop", "covid-node")
	if state, result, status := fm.show("ActiveState"), fm.show("Result"), fm.show("ExecMainStatus"); state != "inactive" || result != "success" || status != "0" {
		t.Fatalf("systemctl stop on %s left ActiveState=%s Result=%s ExecMainStatus=%s, want inactive, success, 0", follower, state, result, status)
	}
	fm.exec("systemctl", "start", "covid-node")
	c.waitReady(follower)

	// Power loss of a machine: the enabled unit starts the node on boot.
	other := ids[2]
	if other == follower {
		other = ids[1]
	}
	docker(t, "kill", machines[other].name)
	docker(t, "start", machines[other].name)
	machines[other].booted(c)
	c.waitReady(other)
	l.stop()
	c.waitHasAll(l.acked, 60*time.Second, ids...)
	t.Logf("%d keys acknowledged through three provisioned machines, all on every node", l.acked.len())
}

// checkSandbox asserts the unit's sandbox as systemd applied it: the node
// runs as the covid-node user with no capabilities, its state directory is
// its own, and systemd-analyze rates the unit's exposure OK.
func checkSandbox(t *testing.T, c *cluster, m machine) {
	t.Helper()
	pid := m.show("MainPID")
	if user := m.exec("stat", "-c", "%U", "/proc/"+pid); user != "covid-node" {
		t.Fatalf("the node runs as %q, want covid-node", user)
	}
	status := m.exec("cat", "/proc/"+pid+"/status")
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[0] == "CapEff:" || f[0] == "CapBnd:" || f[0] == "CapPrm:") {
			if v, err := strconv.ParseUint(f[1], 16, 64); err != nil || v != 0 {
				t.Fatalf("the node has %s %s, want no capabilities", f[0], f[1])
			}
		}
		if strings.HasPrefix(line, "NoNewPrivs:") && !strings.HasSuffix(line, "1") {
			t.Fatalf("the node runs without NoNewPrivileges: %s", line)
		}
	}
	if owner := m.exec("stat", "-c", "%U %a", "/var/lib/covid-backend"); owner != "covid-node 700" {
		t.Fatalf("the state directory is %q, want covid-node 700", owner)
	}
	security := m.exec("systemd-analyze", "security", "--no-pager", "covid-node")
	overall := security[strings.LastIndex(security, "\n")+1:]
	if !strings.Contains(overall, " OK") {
		t.Fatalf("systemd-analyze rates the unit's exposure worse than OK: %s", overall)
	}
	t.Logf("%s: %s", m.name, strings.TrimPrefix(overall, "→ "))
}
