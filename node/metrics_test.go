package node

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// A command committed through the leader is timed under its type, and a
// raft snapshot is timed once written.
func TestApplyAndSnapshotAreTimed(t *testing.T) {
	n, reg := measuredLeader(t)
	before := histogramCounts(t, reg)
	if err := command.PutNode(context.Background(), n, &fsmpb.Node{Id: "spare", RaftAddr: "127.0.0.9:3", HttpAddr: "127.0.0.9:4"}); err != nil {
		t.Fatal(err)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	after := histogramCounts(t, reg)
	if got := after["covid_raft_apply_seconds{put_node}"] - before["covid_raft_apply_seconds{put_node}"]; got != 1 {
		t.Fatalf("put_node applies timed: %d, want 1 (%v)", got, after)
	}
	if got := after["covid_raft_snapshot_seconds{}"] - before["covid_raft_snapshot_seconds{}"]; got != 1 {
		t.Fatalf("snapshots timed: %d, want 1 (%v)", got, after)
	}
}

// measuredLeader opens the leader of a one-node region whose metrics are
// registered in a registry of their own; it closes with the test. It
// returns once the node has recorded itself in the region (registerSelf's
// put_node, timed), so that this write does not count in the test's.
func measuredLeader(t *testing.T) (*Node, *prometheus.Registry) {
	cfg := testConfig(t)
	cfg.Bootstrap = true
	n := openLeader(t, cfg)
	t.Cleanup(func() { n.Close(context.Background()) })
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.Collectors()...)
	deadline := time.Now().Add(10 * time.Second)
	for histogramCounts(t, reg)["covid_raft_apply_seconds{put_node}"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the node did not record itself in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n, reg
}

// histogramCounts maps "name{label values}" to the histogram's count.
func histogramCounts(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName() + "{"
			for _, l := range m.GetLabel() {
				key += l.GetValue()
			}
			counts[key+"}"] = m.GetHistogram().GetSampleCount()
		}
	}
	return counts
}
