package api

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus metrics, on a registry of its own.
// They are served to operators only (admin token): upload counts over
// time would tell what the padding of exports hides.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// uploads counts uploads by outcome; bytes the response bytes by route.
	uploads, bytes *prometheus.CounterVec
}

func (s *Server) newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "covid_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "covid_uploads_total", Help: "Uploads answered, by outcome (accepted, or the GAEN error code).",
		}, []string{"outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "covid_http_response_bytes_total", Help: "Bytes of response bodies, by route.",
		}, []string{"route"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "covid_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"route"}),
	}
	f := s.node.FSM()
	gauge := func(name, help string, value func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value)
	}
	m.registry.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("covid_keys", "Keys held in the local state.", func() float64 { return float64(f.NumKeys()) }),
		gauge("covid_last_batch", "Newest sealed batch of this region.", func() float64 { return float64(f.LastBatch()) }),
		gauge("covid_raft_applied_index", "Last raft index applied here.", func() float64 { return float64(s.node.AppliedIndex()) }),
		gauge("covid_clock_agrees", "This leader's clock at the last check: 1 a majority of the region agrees, 0 unconfirmed (no seal or expiry), -1 a majority disagrees (it stamps nothing).", func() float64 {
			switch r := s.node.Clocks(); {
			case r.Checked.IsZero() || r.Agrees:
				return 1
			case r.Disagrees:
				return -1
			}
			return 0
		}),
		gauge("covid_clock_max_offset_seconds", "Largest offset of another member's clock from this leader's, at the last check.", func() float64 {
			return s.node.Clocks().MaxOffset().Seconds()
		}),
		gauge("covid_raft_leader", "1 while this node leads its region.", func() float64 {
			if s.node.IsLeader() {
				return 1
			}
			return 0
		}),
		m.uploads, m.bytes,
		gauge("covid_raft_term", "Current raft term.", func() float64 { return float64(s.node.RaftStats().Term) }),
		gauge("covid_raft_commit_index", "Raft commit index as this node knows it.", func() float64 { return float64(s.node.RaftStats().CommitIndex) }),
		gauge("covid_raft_last_index", "Last raft index in this node's log.", func() float64 { return float64(s.node.RaftStats().LastIndex) }),
		gauge("covid_raft_last_contact_seconds", "Since a follower last heard from its leader (0 on the leader, -1 never).", func() float64 {
			return s.node.RaftStats().LastContact.Seconds()
		}),
		gauge("covid_raft_snapshot_bytes", "Size of the newest raft snapshot.", func() float64 { return float64(s.node.RaftStats().SnapshotBytes) }),
		gauge("covid_raft_snapshot_index", "Raft index of the newest snapshot.", func() float64 { return float64(s.node.RaftStats().SnapshotIndex) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "covid_raft_leadership_changes_total", Help: "This node's gains and losses of leadership."},
			func() float64 { return float64(s.node.RaftStats().LeadershipChanges) }),
		gauge("covid_data_dir_bytes", "Disk the data dir takes (raft log and snapshots).", func() float64 { return float64(s.node.DataDirBytes()) }),
		gauge("covid_data_dir_free_bytes", "Free space of the data dir's file system (below --min-free-disk-mib the node takes no writes).", func() float64 { return float64(s.node.DiskFree()) }),
		gauge("covid_last_batch_entries", "Entries of the newest batch (keys, padding, revised keys).", func() float64 {
			if b := f.Batches(); len(b) > 0 {
				last := b[len(b)-1]
				return float64(last.Keys + last.Padding + last.Revised)
			}
			return 0
		}),
		gauge("covid_last_seal_age_seconds", "Since the newest batch ended (the seal schedule stalls when it grows past the seal interval).", func() float64 {
			if b := f.Batches(); len(b) > 0 {
				return s.cfg.Now().Sub(time.Unix(b[len(b)-1].EndUnix, 0)).Seconds()
			}
			return 0
		}),
		codeStates{f: f, now: s.cfg.Now}, federationCollector{pool: s.cfg.Pool, fsm: f},
	)
	m.registry.MustRegister(s.node.Collectors()...)
	m.registry.MustRegister(s.cfg.Collectors...)
	return m
}

// observe counts every request by its route pattern (never its path, so
// keys and codes in URLs cannot reach the metrics).
func (m *metrics) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	if n := c.Writer.Size(); n > 0 {
		m.bytes.WithLabelValues(route).Add(float64(n))
	}
}

func (m *metrics) handler() gin.HandlerFunc {
	return gin.WrapH(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}
