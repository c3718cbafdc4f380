package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// A client over its rate gets 429 with Retry-After; another client and the
// same client after the wait are served.
func TestRateLimitPerClientIP(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := newIPLimiter(1, 3, clock)
	r := gin.New()
	r.GET("/", rateLimit(l), func(c *gin.Context) { c.Status(http.StatusOK) })
	get := func(ip string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = ip + ":1234"
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	for i := range 3 {
		if w := get("10.0.0.1"); w.Code != http.StatusOK {
			t.Fatalf("request %d within burst: %d", i, w.Code)
		}
	}
	w := get("10.0.0.1")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d", w.Code)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if body := decode[errorBody](t, w); body.Code != "rate_limited" {
		t.Fatalf("body %+v", body)
	}
	if w := get("10.0.0.2"); w.Code != http.StatusOK {
		t.Fatalf("other client: %d", w.Code)
	}
	mu.Lock()
	now = now.Add(1100 * time.Millisecond)
	mu.Unlock()
	if w := get("10.0.0.1"); w.Code != http.StatusOK {
		t.Fatalf("after the wait: %d", w.Code)
	}
}

// X-Forwarded-For is honoured only from a trusted proxy: a client cannot
// dodge its limit by inventing addresses.
func TestRateLimitIgnoresUntrustedForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trusted  []string
		wantCode int
	}{
		{"untrusted proxy", nil, http.StatusTooManyRequests},
		{"trusted proxy", []string{"10.9.9.9"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := gin.New()
			if err := r.SetTrustedProxies(tc.trusted); err != nil {
				t.Fatal(err)
			}
			r.GET("/", rateLimit(newIPLimiter(1, 1, time.Now)), func(c *gin.Context) { c.Status(http.StatusOK) })
			var last int
			for i := range 2 {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.RemoteAddr = "10.9.9.9:1234"
				req.Header.Set("X-Forwarded-For", "192.0.2."+strconv.Itoa(i+1))
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				last = w.Code
			}
			if last != tc.wantCode {
				t.Fatalf("second request: %d, want %d", last, tc.wantCode)
			}
		})
	}
}

// Over the in-flight cap a request is refused at once with 429.
func TestInFlightCap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	r := gin.New()
	r.GET("/", inFlight(1), func(c *gin.Context) { entered <- struct{}{}; <-release; c.Status(http.StatusOK) })
	first := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		first <- w.Code
	}()
	<-entered
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second request while the first is in flight: %d", w.Code)
	}
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
}

// Limits count clients: an IPv4 address, or an IPv6 /64 (a host picks any
// address in its /64, so per-address buckets would let it go unlimited).
func TestClientKey(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"10.0.0.1", "::ffff:10.0.0.1", true},
		{"10.0.0.1", "10.0.0.2", false},
	}
	for _, c := range cases {
		if got := clientKey(c.a) == clientKey(c.b); got != c.same {
			t.Errorf("%s and %s: same client %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

// A flood of addresses costs bounded memory: past maxBuckets, new clients
// share one bucket, which limits them together.
func TestLimiterBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newIPLimiter(1, 2, func() time.Time { return now })
	l.maxBuckets = 100
	for i := range 10_000 {
		l.reserve(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if n := len(l.buckets); n > 101 {
		t.Fatalf("%d buckets kept, want at most 101", n)
	}
	if ok, _ := l.reserve("192.0.2.7"); ok {
		t.Fatal("a new client past the bound was not limited with the others")
	}
	if ok, _ := l.reserve("10.0.0.50"); !ok {
		t.Fatal("a client known before the flood lost its own bucket")
	}
}
