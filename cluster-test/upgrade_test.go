package clustertest

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// previousRelease is the last commit of the previous build (command
// version 8); the upgrade test runs it beside this one. A build supports
// upgrading from the previous release only (docs/design.md).
const previousRelease = "b2799f838a4dbbd43ef3412004c2b5d791593e53"

// buildPrevious builds the previous release's binary from the repository's
// history, or skips where the history is not there.
func buildPrevious(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	archive := exec.Command("git", "-C", "..", "archive", previousRelease)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Skipf("the previous release %s is not in this checkout's history: %v", previousRelease[:7], err)
	}
	if err := untar.Wait(); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "covid-node-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/covid-node")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release: %v\n%s", err, out)
	}
	return bin
}

// A region of the previous release upgraded one node at a time: with one
// node still on the previous release and two on this build, uploads go
// through every node, exports are byte-identical everywhere, and commands
// only this build knows wait (503) instead of stopping the old node; once
// the last node runs this build they go through, and nothing acknowledged
// is lost. A one-time code the previous release issued admits one upload
// after the upgrade; padding by the day (version 9) waits (503) in the
// mixed region and is set once the region is upgraded.
func TestRollingUpgradeFromPreviousRelease(t *testing.T) {
	previous := buildPrevious(t)
	out, err := exec.Command(previous, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "command version 8") {
		t.Fatalf("the previous release says %q (%v)", out, err)
	}
	_, exportFlags := exportKey(t, t.TempDir())
	c := newCluster(t, append(exportFlags, "--seal-interval", "1h", "--seal-min-keys", "20")...)
	c.binaries = map[string]string{"n1": previous, "n2": previous, "n3": previous}
	c.form(3)
	acked := &ackSet{}
	keys, err := c.upload(c.node("n1").url())
	if err != nil {
		t.Fatalf("upload to the previous release: %v", err)
	}
	acked.add(keys)
	for _, id := range []string{"n1", "n2"} {
		c.stop(id)
		delete(c.binaries, id)
		c.start(int(id[1] - '0'))
		c.waitReady(id)
	}
	// The member of the previous release leads, so the upgraded ones
	// forward to a leader that does not know batched forwards (404) and
	// send each write in a request of its own.
	c.waitFor("n3 to lead", 20*time.Second, func() bool {
		if c.leaderAmong(c.ids(3)...) == "n3" {
			return true
		}
		c.cliResult("members", "transfer-leadership", "--addr", c.node("n1").url(), "--id", "n3") // 409 while a transfer runs
		return false
	})
	for _, id := range c.ids(3) {
		keys, err := c.upload(c.node(id).url())
		if err != nil {
			t.Fatalf("upload through %s in the mixed region: %v", id, err)
		}
		acked.add(keys)
	}
	c.adminPost("n3", "/v1/admin/seal")
	var names []string
	c.waitFor("a batch everywhere", 20*time.Second, func() bool {
		for _, id := range c.ids(3) {
			_, b, _ := c.get(id, "/v1/exports/batches.txt")
			if names = strings.Fields(string(b)); len(names) == 0 {
				return false
			}
		}
		return true
	})
	for _, name := range names {
		_, want, _ := c.get("n1", "/"+name)
		for _, id := range []string{"n2", "n3"} {
			if _, got, _ := c.get(id, "/"+name); string(got) != string(want) {
				t.Fatalf("%s: %s differs between builds", id, name)
			}
		}
	}
	// Commands go out in the previous release's version while it runs
	// anywhere in the region, and the old member does not stop on them.
	if _, err := c.cliResult("apikeys", "add", "--addr", c.node("n1").url(), "--name", "app", "--kind", "device"); err != nil {
		t.Fatalf("a write in a mixed region: %v", err)
	}
	if v := c.commandVersion("n1"); v != 8 {
		t.Fatalf("a mixed region applies command version %d, want 8", v)
	}
	token := c.providerToken(c.node("n1").url(), "clinic")
	code := c.issueCode(token, c.node("n3").url())
	byTheDay := []string{"policy", "set", "--addr", c.node("n1").url(), "--padding-keys-per-day", "4200"}
	if out, err := c.cliResult(byTheDay...); err == nil || !strings.Contains(out, ": 503: ") {
		t.Fatalf("padding by the day in a region of version 8: %v %s, want 503 (upgrade pending)", err, out)
	}
	if !c.running("n3") {
		t.Fatal("the node on the previous release stopped")
	}
	// The last node upgraded: the region goes on to version 9.
	c.stop("n3")
	delete(c.binaries, "n3")
	c.start(3)
	c.waitReady("n3")
	c.waitFor("the region to apply command version 9", 30*time.Second, func() bool {
		return c.commandVersion("n2") == 9
	})
	if status := c.codeUpload(c.node("n2").url(), code); status != http.StatusOK {
		t.Fatalf("upload with the previous release's code after the upgrade: %d", status)
	}
	if status := c.codeUpload(c.node("n3").url(), code); status != http.StatusUnauthorized {
		t.Fatalf("a second upload with that code: %d", status)
	}
	if out, err := c.cliResult(byTheDay...); err != nil || !strings.Contains(out, `"padding_keys_per_day": 4200`) || !strings.Contains(out, `"seal_min_keys": 0`) {
		t.Fatalf("padding by the day after the upgrade: %v %s", err, out)
	}
	keys, err = c.upload(c.node("n3").url())
	if err != nil {
		t.Fatal(err)
	}
	acked.add(keys)
	c.waitHasAll(acked, 20*time.Second, c.ids(3)...)
	if status, _, _ := c.get("n3", "/v1/status"); status != http.StatusOK {
		t.Fatalf("status after the upgrade: %d", status)
	}
}
