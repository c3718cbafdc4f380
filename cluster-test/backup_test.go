package clustertest

import (
	"bytes"
	"os"
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
	started := time.Now()
	out := a.cli("backup", "--addr", a.node("n3").url(), "--out", file)
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
	b.form(1)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.backup")
	writeFile(t, truncated, data[:len(data)-1000])
	if out, err := b.cliResult("restore", "--addr", b.node("n1").url(), "--from", truncated); err == nil || !strings.Contains(out, "not a whole backup") {
		t.Fatalf("a truncated backup: %v %s", err, out)
	}
	started = time.Now()
	b.cli("restore", "--addr", b.node("n1").url(), "--from", file)
	t.Logf("restored %d bytes in %v", len(data), time.Since(started).Round(time.Millisecond))
	if out, err := b.cliResult("restore", "--addr", b.node("n1").url(), "--from", file); err == nil || !strings.Contains(out, "409") {
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
	a := newCluster(b, append(exportFlags, "--seal-interval", "1h", "--seal-min-keys", "0", "--snapshot-threshold", "1000000")...)
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
		b.StartTimer()
		started := time.Now()
		a.cli("backup", "--addr", a.node("n1").url(), "--out", file)
		backupTook := time.Since(started)
		b.StopTimer()
		info, _ := os.Stat(file)
		r := newCluster(b, append(exportFlags, "--seal-interval", "1h")...)
		r.form(1)
		b.StartTimer()
		started = time.Now()
		r.cli("restore", "--addr", r.node("n1").url(), "--from", file)
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
