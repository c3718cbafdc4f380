package clustertest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A node whose clock is hours ahead stamps nothing while it leads: it
// finds that the other members' clocks disagree, refuses to stamp (so it
// can neither publish still-valid keys nor expire the region's keys, and
// the region's time is not pushed forward) and hands leadership on. The
// region goes on under a leader whose clock agrees.
func TestLeaderWithBadClockStampsNothing(t *testing.T) {
	c, _ := keyServiceCluster(t, "--seal-interval", "1h")
	c.stop("n1")
	c.start(1, "--test-clock-offset", "3h")
	c.waitReady("n1")
	c.waitFor("n1 to lead and find that its clock disagrees", 30*time.Second, func() bool {
		c.cliResult("members", "transfer-leadership", "--addr", c.node("n2").url(), "--id", "n1")
		return c.logContains("n1", "clock disagrees with a majority")
	})
	c.waitFor("leadership to leave n1", 30*time.Second, func() bool {
		l := c.leaderAmong(c.ids(3)...)
		return l != "" && l != "n1"
	})
	if _, err := c.upload(c.node("n2").url()); err != nil {
		t.Fatalf("upload under a good leader: %v", err)
	}
	c.adminPost("n1", "/v1/admin/seal")
	var b []byte
	c.waitFor("n3 to list the batch", 10*time.Second, func() bool {
		_, b, _ = c.get("n3", "/v1/exports/batches.txt")
		return len(b) > 0
	})
	for _, name := range strings.Fields(string(b)) {
		var start, end int64
		base := name[strings.LastIndex(name, "/")+1:]
		if parts := strings.Split(strings.TrimSuffix(base, ".zip"), "-"); len(parts) == 3 {
			json.Unmarshal([]byte(parts[0]), &start)
			json.Unmarshal([]byte(parts[1]), &end)
		}
		if ahead := time.Unix(end, 0).Sub(time.Now()); ahead > time.Minute {
			t.Fatalf("batch %s ends %v in the future: stamped by the bad clock", name, ahead)
		}
	}
	if len(strings.Fields(string(b))) != 1 {
		t.Fatalf("batches %q, want one", b)
	}
	if v := c.metricValue("n1", "covid_clock_agrees"); v != -1 {
		t.Fatalf("covid_clock_agrees on n1 is %v, want -1 (the disagreement)", v)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
