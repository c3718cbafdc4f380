package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Over the in-flight cap an upload waits for a slot up to the queue wait,
// then gets 429; while as many wait as may run, or just after a wait ran
// out, one more gets 429 before its body is read.
func TestUploadGate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wait     time.Duration
		freeSlot bool // the upload in flight ends while the second waits
		want     int
	}{
		{"slot frees within the wait", time.Minute, true, http.StatusOK},
		{"no slot within the wait", time.Second, false, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newUploadGate(1, tc.wait)
			release := make(chan struct{})
			var bodies atomic.Int64
			r := gin.New()
			readBody := func(c *gin.Context) { io.ReadAll(c.Request.Body); bodies.Add(1) }
			r.POST("/", g.shedEarly, readBody, g.admit, func(c *gin.Context) { <-release; c.Status(http.StatusOK) })
			post := func(codes chan<- int) {
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
				codes <- w.Code
			}
			first, second := make(chan int, 1), make(chan int, 1)
			go post(first)
			waitFor(t, func() bool { return len(g.slots) == 1 })
			go post(second)
			if tc.freeSlot {
				waitFor(t, func() bool { return g.waiting.Load() == 1 })
				third := make(chan int, 1)
				post(third)
				if code := <-third; code != http.StatusTooManyRequests || bodies.Load() != 2 {
					t.Fatalf("third upload while one runs and one waits: %d, %d bodies read, want 429 and 2", code, bodies.Load())
				}
				release <- struct{}{} // the first ends; the second takes its slot
				release <- struct{}{}
			}
			if code := <-second; code != tc.want {
				t.Fatalf("second upload: %d, want %d", code, tc.want)
			}
			if !tc.freeSlot {
				third := make(chan int, 1)
				post(third)
				if code := <-third; code != http.StatusTooManyRequests || bodies.Load() != 2 {
					t.Fatalf("third upload just after a wait ran out: %d, %d bodies read, want 429 and 2", code, bodies.Load())
				}
			}
			close(release)
			if code := <-first; code != http.StatusOK {
				t.Fatalf("first upload: %d", code)
			}
		})
	}
}

// waitFor polls cond until it holds, failing after 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
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

// A flood of addresses costs bounded memory and locks out no one: past
// maxBuckets a new client takes the place of the one seen longest ago, so
// 20 new clients after a flood of 10,000 addresses each get their own
// burst, while a client still active keeps its bucket, limited.
func TestLimiterBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newIPLimiter(1, 2, func() time.Time { return now })
	l.maxBuckets = 100
	l.reserve("192.0.2.1")
	l.reserve("192.0.2.1") // its burst spent
	for i := range 10_000 {
		for range 3 { // each address spends its burst and is refused once
			l.reserve(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		}
		if i%50 == 0 {
			if ok, _ := l.reserve("192.0.2.1"); ok {
				t.Fatal("a client over its rate was let through during the flood")
			}
		}
	}
	if n, m := len(l.buckets), l.recent.Len(); n > 100 || m != n {
		t.Fatalf("%d buckets and %d places kept, want at most 100, equal", n, m)
	}
	for i := range 20 {
		if ok, _ := l.reserve(fmt.Sprintf("198.51.100.%d", i)); !ok {
			t.Fatalf("new client %d after the flood got 429", i)
		}
	}
}
