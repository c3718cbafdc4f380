package api

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/feed"
)

// Routes the download fast path answers, as gin names them (the metrics'
// route label is the same whichever of the two answers).
const (
	routeIndex   = "/v1/exports/index.txt"
	routeBatches = "/v1/exports/batches.txt"
	routeDayFile = "/v1/exports/day/:name"
	routeFile    = "/v1/exports/:name"
)

// Header values every answer of the fast path shares (net/http never
// changes a header's values, so one slice serves every request).
var (
	immutableCacheValue = []string{immutableCache}
	indexCacheValue     = []string{indexCache}
	zipTypeValue        = []string{"application/zip"}
	textTypeValue       = []string{"text/plain; charset=utf-8"}
)

// downloads answers GET and HEAD of index.txt, batches.txt and the export
// files before gin's router: these are what every app fetches, most of a
// node's requests. It keeps what the gin routes do (the read limit, the
// metrics, ETag, 304, HEAD, the error bodies) with less work per request:
// no router or gin context, the metric series looked up once, shared
// header values. A request from a trusted proxy goes to gin, which reads
// the client address from its X-Forwarded-For.
type downloads struct {
	s       *Server
	next    http.Handler
	limit   *ipLimiter
	trusted []netip.Prefix
	series  map[string]*routeSeries
}

// routeSeries are one route's metric series, resolved once.
type routeSeries struct {
	ok, notModified prometheus.Counter
	duration        prometheus.Observer
	bytes           prometheus.Counter
	requests        *prometheus.CounterVec
}

func newDownloads(s *Server, next http.Handler, limit *ipLimiter, trusted []string) (*downloads, error) {
	d := &downloads{s: s, next: next, limit: limit, series: map[string]*routeSeries{}}
	for _, t := range trusted {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			a, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return nil, errors.Join(err, aerr)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		d.trusted = append(d.trusted, p)
	}
	m := s.metrics
	for _, route := range []string{routeIndex, routeBatches, routeDayFile, routeFile} {
		d.series[route] = &routeSeries{requests: m.requests,
			ok: m.requests.WithLabelValues(route, "200"), notModified: m.requests.WithLabelValues(route, "304"),
			duration: m.duration.WithLabelValues(route), bytes: m.bytes.WithLabelValues(route)}
	}
	return d, nil
}

func (d *downloads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, name := exportRoute(r)
	if route == "" {
		d.next.ServeHTTP(w, r)
		return
	}
	ip, ok := d.clientIP(r)
	if !ok {
		d.next.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	series := d.series[route]
	status, n := d.serve(w, r, route, name, ip)
	switch status {
	case http.StatusOK:
		series.ok.Inc()
	case http.StatusNotModified:
		series.notModified.Inc()
	default:
		series.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	}
	series.duration.Observe(time.Since(start).Seconds())
	if n > 0 {
		series.bytes.Add(float64(n))
	}
}

// exportRoute tells which fast-path route a request is for, and the
// file's name relative to the export root; "" for any other request.
func exportRoute(r *http.Request) (route, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", ""
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/exports/")
	switch {
	case !ok || rest == "":
		return "", ""
	case rest == "index.txt":
		return routeIndex, ""
	case rest == "batches.txt":
		return routeBatches, ""
	}
	if file, ok := strings.CutPrefix(rest, "day/"); ok {
		if file == "" || strings.Contains(file, "/") {
			return "", ""
		}
		return routeDayFile, rest
	}
	if strings.Contains(rest, "/") {
		return "", ""
	}
	return routeFile, rest
}

// clientIP is the address the read limit counts; false for a request
// from a trusted proxy.
func (d *downloads) clientIP(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "", false
	}
	if len(d.trusted) > 0 {
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return "", false
		}
		for _, p := range d.trusted {
			if p.Contains(addr.Unmap()) {
				return "", false
			}
		}
	}
	return host, true
}

// serve answers one download and returns its status and body length.
func (d *downloads) serve(w http.ResponseWriter, r *http.Request, route, name, ip string) (int, int) {
	if ok, wait := d.limit.reserve(ip); !ok {
		w.Header()["Retry-After"] = []string{retryAfter(wait)}
		return writeError(w, http.StatusTooManyRequests, "rate_limited", "rate limit exceeded for this client")
	}
	now := d.s.cfg.Now()
	if route == routeIndex || route == routeBatches {
		return writeList(w, r, d.s.catalog.IndexFile(now, route == routeIndex))
	}
	f, err := d.s.catalog.File(now, name)
	switch {
	case errors.Is(err, feed.ErrNotFound):
		return writeError(w, http.StatusNotFound, "not_found", "no such export file")
	case errors.Is(err, feed.ErrNoSigningKey):
		w.Header()["Retry-After"] = []string{"1"}
		return writeError(w, http.StatusServiceUnavailable, "no_export_key", "this node has no export signing key")
	case errors.Is(err, feed.ErrNotSigned):
		w.Header()["Retry-After"] = []string{"1"}
		return writeError(w, http.StatusServiceUnavailable, "not_signed", "the file is not signed yet; retry")
	case err != nil:
		d.s.cfg.Logger.Error("build export file", "name", name, "err", err)
		return writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
	}
	return writeBytes(w, r, zipTypeValue, immutableCacheValue, f.ETag, f.Data)
}

// handler serves a route through gin, for requests the fast path leaves
// to it (from a trusted proxy): gin's observe middleware counts them.
func (d *downloads) handler(route string) gin.HandlerFunc {
	return func(c *gin.Context) {
		name := strings.TrimPrefix(c.Request.URL.Path, "/v1/exports/")
		d.serve(c.Writer, c.Request, route, name, c.ClientIP())
	}
}

// writeError answers the JSON error body fail writes.
func writeError(w http.ResponseWriter, status int, code, msg string) (int, int) {
	body, _ := json.Marshal(errorBody{Error: msg, Code: code})
	w.Header()["Content-Type"] = []string{"application/json; charset=utf-8"}
	w.WriteHeader(status)
	n, _ := w.Write(body)
	return status, n
}
