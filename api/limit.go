package api

import (
	"container/list"
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/covid-backend/covid-backend/account"
)

// Limits are the DoS filters of the app and provider APIs. A rate of 0
// turns that limit off.
type Limits struct {
	// PublishRate and PublishBurst bound uploads per client IP.
	PublishRate  float64
	PublishBurst int
	// ReadRate and ReadBurst bound reads per client IP.
	ReadRate  float64
	ReadBurst int
	// MaxUploadsInFlight caps uploads being processed at once on this node.
	// One more waits up to UploadQueueWait for a slot, then gets 429. Once
	// a wait has run out, uploads that find no free slot get 429 at once,
	// before their body is read, for as long again; so do uploads that
	// arrive while as many wait as may run. Under overload
	// accepted uploads stay fast and the rest are told quickly, instead of
	// every upload queueing. The default, 128, takes 90 % of what a node
	// takes with no cap at 640 clients on a 3-node region; 64 took 57 %
	// (BenchmarkOverload, docs/reliability.md).
	MaxUploadsInFlight int
	UploadQueueWait    time.Duration
	// CodeFailuresPerHour and CodeFailureBurst bound wrong one-time codes
	// per client IP; past them its code uploads get 429.
	CodeFailuresPerHour float64
	CodeFailureBurst    int
}

// DefaultLimits suit a node that apps reach directly: an app publishes
// once per diagnosis and reads a few times a day.
func DefaultLimits() Limits {
	return Limits{PublishRate: 1, PublishBurst: 10, ReadRate: 20, ReadBurst: 60, MaxUploadsInFlight: 128,
		UploadQueueWait: 100 * time.Millisecond, CodeFailuresPerHour: 10, CodeFailureBurst: 10}
}

// ipLimiter keeps one token bucket per client (an IPv4 address, or an IPv6
// /64: one host's share of addresses), forgetting idle ones. It keeps at
// most maxBuckets: a new client past that takes the place of the client
// seen longest ago, so that a flood of addresses costs bounded memory and
// never locks out a client it has not seen (a shared bucket for the
// newcomers did: after 101,000 addresses, every new client got 429). A
// client forgotten this way starts again with a full bucket, which a flood
// of that many addresses has anyway.
type ipLimiter struct {
	limit      rate.Limit
	burst      int
	now        func() time.Time
	maxBuckets int

	mu      sync.Mutex
	buckets map[string]*bucket
	recent  *list.List // of client keys, most recently seen first
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
	at   *list.Element // the client's place in recent
}

// idleAfter is how long an untouched bucket is kept at least; it is
// forgotten only once full again.
const idleAfter = 10 * time.Minute

// defaultMaxBuckets bounds a limiter's memory (about 200 bytes a bucket).
const defaultMaxBuckets = 100_000

// clientKey is the client a limit counts: an IPv4 address, or the /64 of
// an IPv6 address (a host is given a /64 and chooses within it).
func clientKey(ip string) string { return account.ClientAddress(ip) }

func newIPLimiter(perSecond float64, burst int, now func() time.Time) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &ipLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), now: now, maxBuckets: defaultMaxBuckets,
		buckets: map[string]*bucket{}, recent: list.New()}
}

// reserve takes a token for ip, or says how long until one is free. A nil
// limiter (limit off) always admits.
func (l *ipLimiter) reserve(ip string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucket(ip, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// exhausted reports whether ip has no token left, without taking one.
func (l *ipLimiter) exhausted(ip string) bool {
	if l == nil {
		return false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucket(ip, now).TokensAt(now) < 1
}

// bucket returns the bucket of ip's client, forgetting idle ones now and
// then; the caller holds the lock.
func (l *ipLimiter) bucket(ip string, now time.Time) *rate.Limiter {
	key := clientKey(ip)
	if now.Sub(l.swept) > idleAfter {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxBuckets {
			l.forget(l.recent.Back().Value.(string)) // seen longest ago
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst), at: l.recent.PushFront(key)}
		l.buckets[key] = b
	}
	b.seen = now
	l.recent.MoveToFront(b.at)
	return b.lim
}

func (l *ipLimiter) forget(key string) {
	l.recent.Remove(l.buckets[key].at)
	delete(l.buckets, key)
}

func (l *ipLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.seen) > idleAfter && b.lim.TokensAt(now) >= float64(l.burst) {
			l.forget(k) // full again: forgetting it changes nothing
		}
	}
	l.swept = now
}

// rateLimit answers 429 with Retry-After when the client IP is over its
// rate. The client IP honours X-Forwarded-For only from trusted proxies.
func rateLimit(l *ipLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if ok, wait := l.reserve(c.ClientIP()); !ok {
			tooMany(c, wait, "rate limit exceeded for this client")
		}
	}
}

// uploadGate bounds the uploads a node processes at once and how long
// one waits for a slot (see Limits.MaxUploadsInFlight). A nil gate (no
// cap) admits all.
type uploadGate struct {
	slots   chan struct{}
	waiting atomic.Int64
	maxWait time.Duration
	// shedUntil (Unix nanoseconds) is maxWait after the last wait that ran
	// out, or 0 once a waiter got a slot: until then no upload waits.
	shedUntil atomic.Int64
}

func newUploadGate(max int, maxWait time.Duration) *uploadGate {
	if max <= 0 {
		return nil
	}
	return &uploadGate{slots: make(chan struct{}, max), maxWait: maxWait}
}

// shedEarly answers 429 before the body is read when this upload would
// not get a slot: every slot is taken and either a wait ran out lately or
// as many uploads wait as may run.
func (g *uploadGate) shedEarly(c *gin.Context) {
	if g != nil && len(g.slots) == cap(g.slots) && (g.shedding() || g.waiting.Load() >= int64(cap(g.slots))) {
		tooMany(c, time.Second, "too many uploads in flight on this node")
	}
}

func (g *uploadGate) shedding() bool { return time.Now().UnixNano() < g.shedUntil.Load() }

// admit holds a slot while the rest of the chain runs; without one within
// maxWait it answers 429.
func (g *uploadGate) admit(c *gin.Context) {
	if g == nil {
		return
	}
	if !g.acquire(c.Request.Context()) {
		tooMany(c, time.Second, "too many uploads in flight on this node")
		return
	}
	defer func() { <-g.slots }()
	c.Next()
}

func (g *uploadGate) acquire(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if g.shedding() {
		return false
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		g.shedUntil.Store(0)
		return true
	case <-t.C:
		g.shedUntil.Store(time.Now().Add(g.maxWait).UnixNano())
	case <-ctx.Done():
	}
	return false
}

func tooMany(c *gin.Context, wait time.Duration, msg string) {
	c.Header("Retry-After", retryAfter(wait))
	c.AbortWithStatusJSON(http.StatusTooManyRequests, errorBody{Error: msg, Code: "rate_limited"})
}

// retryAfter is a Retry-After value: whole seconds, at least one.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(int(math.Ceil(max(wait, time.Second).Seconds())))
}
