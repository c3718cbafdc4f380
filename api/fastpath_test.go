package api

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// The download fast path answers as the gin routes do (a request from a
// trusted proxy takes those), byte for byte and header for header; both
// count the read limit per client, the proxied one by its
// X-Forwarded-For; both are counted in the metrics by route and status.
func TestDownloadFastPathAnswersAsGin(t *testing.T) {
	const proxy = "192.0.2.9"
	ts, _ := downloadServerConfig(t, Config{Limits: Limits{ReadRate: 1, ReadBurst: 2}, TrustedProxies: []string{proxy}})
	get := func(path, from, forwardedFor string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = from + ":4711"
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		w := httptest.NewRecorder()
		ts.h.ServeHTTP(w, req)
		return w
	}
	index := get("/v1/exports/index.txt", "203.0.113.1", "")
	if index.Code != http.StatusOK {
		t.Fatalf("index: %d %s", index.Code, index.Body)
	}
	name := "/" + strings.TrimSpace(index.Body.String())
	direct, proxied := get(name, "198.51.100.1", ""), get(name, proxy, "198.51.100.2")
	if direct.Code != http.StatusOK || proxied.Code != http.StatusOK || direct.Body.String() != proxied.Body.String() {
		t.Fatalf("direct %d, proxied %d, bodies equal %v", direct.Code, proxied.Code, direct.Body.String() == proxied.Body.String())
	}
	if !maps.EqualFunc(direct.Header(), proxied.Header(), slices.Equal) {
		t.Fatalf("headers differ:\ndirect  %v\nproxied %v", direct.Header(), proxied.Header())
	}
	for _, tc := range []struct {
		name, from, forwardedFor string
		want                     int
	}{
		{"direct client's second", "198.51.100.1", "", http.StatusOK},
		{"direct client over its burst", "198.51.100.1", "", http.StatusTooManyRequests},
		{"proxied client's second", proxy, "198.51.100.2", http.StatusOK},
		{"proxied client over its burst", proxy, "198.51.100.2", http.StatusTooManyRequests},
		{"another client behind the proxy", proxy, "198.51.100.3", http.StatusOK},
		{"the proxy itself", proxy, "", http.StatusOK},
	} {
		w := get(name, tc.from, tc.forwardedFor)
		if w.Code != tc.want {
			t.Fatalf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
		if tc.want == http.StatusTooManyRequests && (w.Header().Get("Retry-After") == "" || decode[errorBody](t, w).Code != "rate_limited") {
			t.Fatalf("%s: Retry-After %q, body %s", tc.name, w.Header().Get("Retry-After"), w.Body)
		}
	}
	metrics := ts.admin(http.MethodGet, "/metrics", nil).Body.String()
	for _, want := range []string{
		`covid_http_requests_total{route="/v1/exports/day/:name",status="200"} 6`,
		`covid_http_requests_total{route="/v1/exports/day/:name",status="429"} 2`,
		`covid_http_requests_total{route="/v1/exports/index.txt",status="200"} 1`,
		`covid_http_request_seconds_count{route="/v1/exports/day/:name"} 8`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Requests the fast path does not serve go on to gin: other methods, and
// paths that are not a download (a trailing slash, a nested name).
func TestDownloadFastPathLeavesTheRest(t *testing.T) {
	ts, _ := downloadServer(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/v1/exports/index.txt", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/exports/day/a/b.zip", http.StatusNotFound},
		{http.MethodGet, "/v1/exports/nonsense", http.StatusNotFound},
		{http.MethodGet, "/v1/status", http.StatusOK},
	} {
		w := ts.do(tc.method, tc.path, nil, nil)
		if w.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.want)
		}
		if w.Code != http.StatusOK && decode[errorBody](t, w).Code == "" {
			t.Errorf("%s %s: no error code in %s", tc.method, tc.path, w.Body)
		}
	}
}

// Over a real TCP connection a corked answer (4 KiB and more) arrives
// whole, with its headers, and the connection serves the next request;
// so does a HEAD and a small answer.
func TestCorkedAnswerOverTCP(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := body
		if r.URL.Path == "/small" {
			data = body[:100]
		}
		writeBytes(w, r, zipTypeValue, immutableCacheValue, `"tag"`, data)
	}))
	srv.Config.ConnContext = withConn
	srv.Start()
	t.Cleanup(srv.Close)
	var conns atomic.Int32
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	for i, tc := range []struct {
		method, path string
		want         []byte
	}{{http.MethodGet, "/", body}, {http.MethodGet, "/small", body[:100]}, {http.MethodHead, "/", nil}, {http.MethodGet, "/", body}} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantLength := int64(len(tc.want))
		if tc.method == http.MethodHead {
			wantLength = int64(len(body))
		}
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, tc.want) || resp.Header.Get("Etag") != `"tag"` || resp.ContentLength != wantLength {
			t.Fatalf("request %d (%s %s): %d, %d bytes, length %d, err %v", i, tc.method, tc.path, resp.StatusCode, len(got), resp.ContentLength, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("4 requests took %d connections, want 1 (kept alive)", n)
	}
}
