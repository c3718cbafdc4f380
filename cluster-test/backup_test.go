package clustertest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A backup taken through any node while uploads go on holds every key
// acknowledged before it began; the region is then destroyed, and a new
// region seeded from the file serves every such key on every node and
// the same export files byte for byte. A truncated file and a second
// restore into a region that is no longer new are refused.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	_, exportFlags := exportKey(t, t.TempDir())
	a := newCluster(t, append(exportFlags, "--seal-interval", "1s", "--seal-min-keys", "50")...)
	a.form(3)
	l := a.startLoad(4, func() []string { return a.ids(3) })
	a.waitFor("300 acknowledged keys", 30*time.Second, func() bool { return l.acked.len() >= 300 })
	before := l.acked.snapshot()
	_, listed, _ := a.get("n1", "/v1/exports/batches.txt")
	batchesBefore := len(strings.Fields(string(listed)))
	file := filepath.Join(t.TempDir(), "region.backup")
	recipient, identity := operatorAgeKey(t)
	started := time.Now()
	out := a.cli("backup", "--addr", a.node("n3").url(), "--out", file, "--recipient", recipient)
	t.Logf("%s in %v, under load", strings.TrimSpace(out), time.Since(started).Round(time.Millisecond))
	l.stop()
	files := map[string][]byte{}
	_, listed, _ = a.get("n1", "/v1/exports/batches.txt")
	for _, name := range strings.Fields(string(listed)) {
		_, data, _ := a.get("n1", "/"+name)
		files[name] = data
	}
	for _, id := range a.ids(3) {
		a.kill9(id)
	}

	b := newCluster(t, append(exportFlags, "--seal-interval", "1h")...)
	b.shareRegionKeys(a)
	b.form(1)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.backup")
	writeFile(t, truncated, data[:len(data)-1000])
	if out, err := b.cliResult("restore", "--addr", b.node("n1").url(), "--from", truncated, "--identity", identity); err == nil || !strings.Contains(out, "decrypt") {
		t.Fatalf("a truncated backup: %v %s", err, out)
	}
	started = time.Now()
	b.cli("restore", "--addr", b.node("n1").url(), "--from", file, "--identity", identity)
	t.Logf("restored %d bytes in %v", len(data), time.Since(started).Round(time.Millisecond))
	if out, err := b.cliResult("restore", "--addr", b.node("n1").url(), "--from", file, "--identity", identity); err == nil || !strings.Contains(out, "409") {
		t.Fatalf("a second restore into a region that is not new: %v %s", err, out)
	}
	for i := 2; i <= 3; i++ {
		b.start(i, "--join", b.joinAddr("n1"))
		b.waitReady(b.ids(i)[i-1])
	}
	acked := &ackSet{}
	acked.add(before)
	b.waitHasAll(acked, 30*time.Second, b.ids(3)...)
	for _, id := range b.ids(3) {
		var names []string
		b.waitFor(id+" to list the restored batches", 20*time.Second, func() bool {
			_, listed, _ := b.get(id, "/v1/exports/batches.txt")
			names = strings.Fields(string(listed))
			return len(names) >= batchesBefore
		})
		for _, name := range names {
			_, got, _ := b.get(id, "/"+name)
			if want, ok := files[name]; !ok || !bytes.Equal(got, want) {
				t.Fatalf("%s serves %s unlike the region it was restored from (known there: %v)", id, name, ok)
			}
		}
	}
}

// BenchmarkBackupRestore1M measures backing up a 3-node region holding a
// million keys, seeding a new region from the file, and a fresh node
// joining that region until it holds every key (catch-up-s: raft sends it
// the snapshot). Run with: make bench.
func BenchmarkBackupRestore1M(b *testing.B) {
	_, exportFlags := exportKey(b, b.TempDir())
	a := newCluster(b, append(exportFlags, "--seal-interval", "1h", "--padding-keys-per-day", "0", "--snapshot-threshold", "1000000")...)
	a.form(3)
	for range b.N {
		b.StopTimer()
		l := a.startLoad(64, func() []string { return a.ids(3) })
		a.waitFor("a million keys", 10*time.Minute, func() bool { return l.acked.len() >= 1_000_000 })
		l.stop()
		st, err := a.status("n1")
		if err != nil {
			b.Fatal(err)
		}
		file := filepath.Join(b.TempDir(), "region.backup")
		recipient, identity := operatorAgeKey(b)
		b.StartTimer()
		started := time.Now()
		a.cli("backup", "--addr", a.node("n1").url(), "--out", file, "--recipient", recipient)
		backupTook := time.Since(started)
		b.StopTimer()
		info, _ := os.Stat(file)
		r := newCluster(b, append(exportFlags, "--seal-interval", "1h")...)
		r.shareRegionKeys(a)
		r.form(1)
		b.StartTimer()
		started = time.Now()
		r.cli("restore", "--addr", r.node("n1").url(), "--from", file, "--identity", identity)
		restoreTook := time.Since(started)
		b.StopTimer()
		got, err := r.status("n1")
		if err != nil || got.Keys != st.Keys {
			b.Fatalf("restored region holds %d keys, the backed-up one %d (%v)", got.Keys, st.Keys, err)
		}
		b.StartTimer()
		started = time.Now()
		r.start(2, "--join", r.joinAddr("n1"))
		r.waitFor("the joining node to hold every key", 5*time.Minute, func() bool {
			st, err := r.status("n2")
			return err == nil && st.Keys == got.Keys
		})
		catchUpTook := time.Since(started)
		b.StopTimer()
		b.ReportMetric(float64(st.Keys), "keys")
		b.ReportMetric(float64(info.Size())/1e6, "backup-MB")
		b.ReportMetric(backupTook.Seconds(), "backup-s")
		b.ReportMetric(restoreTook.Seconds(), "restore-s")
		b.ReportMetric(catchUpTook.Seconds(), "catch-up-s")
		r.stopAll()
		b.StartTimer()
	}
}

// operatorAgeKey makes an operator's age identity file with covid-node
// keygen --age and returns its recipient and the file.
func operatorAgeKey(tb testing.TB) (recipient, identityFile string) {
	tb.Helper()
	identityFile = filepath.Join(tb.TempDir(), "operator.agekey")
	out, err := exec.Command(binary, "keygen", "--age", "--out", identityFile).CombinedOutput()
	if err != nil {
		tb.Fatalf("keygen --age: %v %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(line, "recipient: "); ok {
			return strings.Fields(r)[0], identityFile
		}
	}
	tb.Fatalf("keygen --age printed no recipient: %s", out)
	return "", ""
}

// shareRegionKeys gives this cluster, before it starts, the region CA and
// secret keys of another: a region re-made from a backup runs with the
// key files of the one backed up (the backup's trailer is under its code
// key).
func (c *cluster) shareRegionKeys(from *cluster) {
	c.t.Helper()
	dir := filepath.Join(c.dir, "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	for _, name := range []string{"ca.pem", "ca.key", "code.key", "revision.key"} {
		data, err := os.ReadFile(filepath.Join(from.dir, "certs", name))
		if err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
}
