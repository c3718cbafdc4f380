package clustertest

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of the given size at dir, unmounted (lazily,
// after the processes are gone) at the end of the test.
func smallDisk(t *testing.T, dir string, mib int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the full disk scenario mounts a tmpfs: it needs root (CI runs as root)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(mib)+"m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs at %s: %v %s", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill leaves about leave bytes free on the file system of dir, with one
// filler file it returns.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-leave); err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	return path
}

// A node whose data dir runs out of room refuses writes with 503 and says
// why, hands leadership on, and goes on serving reads; the region takes
// uploads through the others. When space returns the node takes writes
// again by itself and holds every acknowledged key.
func TestFullDiskRefusesWritesAndRecovers(t *testing.T) {
	c := newCluster(t, "--min-free-disk-mib", "16")
	smallDisk(t, filepath.Join(c.dir, "n1"), 128)
	c.form(3)
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	if leader != "n1" {
		c.cli("members", "transfer-leadership", "--addr", c.node(leader).url(), "--id", "n1")
		c.waitFor("n1 to lead", 20*time.Second, func() bool { return c.leaderAmong(c.ids(3)...) == "n1" })
	}
	l := c.startLoad(4, func() []string { return []string{"n2", "n3"} })
	c.waitFor("uploads", 20*time.Second, func() bool { return l.acked.len() >= 14*20 })

	filler := fill(t, c.node("n1").dataDir, 8<<20)
	var msg string
	c.waitFor("n1 to refuse uploads for want of disk", 20*time.Second, func() bool {
		req, _ := c.signer.RandomUpload(14, time.Now())
		status, out, err := postJSON(c.client, c.node("n1").url()+"/v1/publish", "", req)
		msg, _ = out["error"].(string)
		return err == nil && status == http.StatusServiceUnavailable && strings.Contains(msg, "MiB free")
	})
	t.Logf("n1 full: %s", msg)
	c.waitFor("leadership to leave n1", 20*time.Second, func() bool {
		l := c.leaderAmong(c.ids(3)...)
		return l != "" && l != "n1"
	})
	if status, _, _ := c.get("n1", "/v1/exports/index.txt"); status != http.StatusOK {
		t.Fatalf("n1 with a full disk answers reads with %d", status)
	}
	n := l.acked.len()
	c.waitFor("uploads through n2 and n3 while n1 is full", 20*time.Second, func() bool { return l.acked.len() >= n+14*20 })

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.waitFor("n1 to take uploads again", 20*time.Second, func() bool {
		_, err := c.upload(c.node("n1").url())
		return err == nil
	})
	l.stop()
	c.waitHasAll(l.acked, 30*time.Second, c.ids(3)...)
	if !c.running("n1") {
		t.Fatalf("n1 stopped while its disk was full:\n%s", c.logTail("n1"))
	}
}

// A leader whose raft log writes hang (a disk whose fsync never returns,
// simulated by --test-stall-file) stops within the stall timeout (exit
// status 4), instead of holding the region: raft would go on sending its
// heartbeats. The others elect a leader and take uploads; restarted with
// its disk back, it catches up, and nothing acknowledged is lost.
func TestHungLogWriteStopsTheLeader(t *testing.T) {
	c := newCluster(t, "--stall-timeout", "2s")
	stall := func(ip string) []string { return []string{"--test-stall-file", filepath.Join(c.dir, "stall-"+ip)} }
	c.nodeFlags = stall
	c.form(3)
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	l := c.startLoad(4, func() []string { return without(c.ids(3), leader) })
	c.waitFor("uploads", 20*time.Second, func() bool { return l.acked.len() >= 14*20 })

	stallFile := filepath.Join(c.dir, "stall-"+c.node(leader).ip)
	writeFile(t, stallFile, nil)
	hung := time.Now()
	c.waitFor(leader+" to stop on its hung disk", 30*time.Second, func() bool { return !c.running(leader) })
	stopped := time.Since(hung)
	var exit *exec.ExitError
	if p := c.node(leader); !errors.As(p.exitErr, &exit) || exit.ExitCode() != 4 || !c.logContains(leader, "raft store stalled") {
		t.Fatalf("%s ended with %v, want exit status 4 and the reason logged:\n%s", leader, p.exitErr, c.logTail(leader))
	}
	n := l.acked.len()
	c.waitFor("an upload acknowledged under a new leader", 30*time.Second, func() bool { return l.acked.len() > n })
	t.Logf("%s stopped %v after its disk hung; the next upload was acknowledged %v after the hang",
		leader, stopped.Round(time.Millisecond), time.Since(hung).Round(time.Millisecond))
	c.waitFor("more uploads", 20*time.Second, func() bool { return l.acked.len() >= n+14*20 })

	os.Remove(stallFile)
	c.start(nodeIndex(leader))
	c.waitReady(leader)
	l.stop()
	c.waitHasAll(l.acked, 30*time.Second, c.ids(3)...)
}

// A node whose raft state is damaged on disk (its log truncated, or its
// newest snapshot corrupted) does not start: it says the state is damaged
// and names the command that re-seeds it. covid-node reseed removes it
// from the region and moves its raft files aside; started again with the
// same flags it joins through the others, takes the leader's snapshot and
// holds every acknowledged key.
func TestReseedDamagedNode(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dataDir string)
	}{
		{"truncated raft log", func(t *testing.T, dataDir string) {
			if err := os.Truncate(filepath.Join(dataDir, "raft.db"), 4096); err != nil {
				t.Fatal(err)
			}
		}},
		{"corrupted snapshot", func(t *testing.T, dataDir string) {
			states, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "*", "state.bin"))
			if len(states) == 0 {
				t.Fatal("no snapshot to corrupt")
			}
			for _, p := range states {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				for i := len(b) / 2; i < len(b)/2+64 && i < len(b); i++ {
					b[i] ^= 0xff
				}
				writeFile(t, p, b)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			c.form(3)
			l := c.startLoad(2, func() []string { return []string{"n1", "n2"} })
			c.waitFor("uploads", 20*time.Second, func() bool { return l.acked.len() >= 14*20 })
			c.adminPost("n3", "/v1/admin/snapshot")
			c.stop("n3")
			tc.damage(t, c.node("n3").dataDir)
			c.start(3)
			c.waitFor("n3 to refuse its damaged state", 20*time.Second, func() bool { return !c.running("n3") })
			if !c.logContains("n3", "covid-node reseed") {
				t.Fatalf("n3 stopped without naming the re-seed command:\n%s", c.logTail("n3"))
			}
			t.Logf("n3 says: %s", grepLines(c.logTail("n3"), "covid-node reseed"))
			out := c.cli("reseed", "--data-dir", c.node("n3").dataDir, "--addr", c.node("n1").url())
			t.Log(strings.TrimSpace(out))
			c.start(3)
			c.waitReady("n3")
			l.stop()
			c.waitHasAll(l.acked, 60*time.Second, c.ids(3)...)
			c.waitFor("3 members", 20*time.Second, func() bool {
				st, err := c.status("n1")
				return err == nil && len(st.Members) == 3
			})
		})
	}
}
