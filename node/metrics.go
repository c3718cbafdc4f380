package node

import (
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// metrics are what an operator watches that only the node sees: how long
// a command takes from this leader's proposal to its applied result, how
// long raft takes to write a snapshot, how many writes a follower's
// forwards to the leader carry and how many a leader's raft rounds. The API layer registers them beside its
// own (Collectors).
type metrics struct {
	apply        *prometheus.HistogramVec
	snapshot     prometheus.Histogram
	forwardBatch prometheus.Histogram
	round        prometheus.Histogram
}

func newMetrics() metrics {
	return metrics{
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "covid_raft_apply_seconds", Help: "From this leader's proposal to the applied result (committed by a majority), by command.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"command"}),
		snapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "covid_raft_snapshot_seconds", Help: "From the start of a raft snapshot to its file written and synced.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		forwardBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "covid_forward_batch_commands", Help: "Commands in each batch this follower forwarded to the leader (count: requests, sum: commands).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 7),
		}),
		round: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "covid_raft_round_commands", Help: "Commands in each round this leader proposed to raft together (count: rounds, sum: commands).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
	}
}

// Collectors are the node's own metrics, for the API's registry.
func (n *Node) Collectors() []prometheus.Collector {
	return []prometheus.Collector{n.metrics.apply, n.metrics.snapshot, n.metrics.forwardBatch, n.metrics.round}
}

// observeApply records one command committed and applied through this
// leader; the label is the command's type, a small fixed set.
func (m metrics) observeApply(t fsmpb.CommandType, d time.Duration) {
	name := strings.ToLower(strings.TrimPrefix(t.String(), "COMMAND_TYPE_"))
	m.apply.WithLabelValues(name).Observe(d.Seconds())
}

func (m metrics) observeSnapshot(d time.Duration) { m.snapshot.Observe(d.Seconds()) }

// timedFSM is the state machine as raft sees it: the same FSM (batching
// included), with its snapshots timed.
type timedFSM struct {
	*fsm.FSM
	observe func(time.Duration)
}

func (t timedFSM) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	s, err := t.FSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return timedSnapshot{FSMSnapshot: s, start: start, observe: t.observe}, nil
}

type timedSnapshot struct {
	raft.FSMSnapshot
	start   time.Time
	observe func(time.Duration)
}

func (s timedSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.FSMSnapshot.Persist(sink); err != nil {
		return err
	}
	s.observe(time.Since(s.start))
	return nil
}
