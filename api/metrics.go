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
}

func (s *Server) newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "covid_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
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
	)
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
}

func (m *metrics) handler() gin.HandlerFunc {
	return gin.WrapH(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}
