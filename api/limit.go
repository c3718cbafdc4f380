package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
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
	// MaxUploadsInFlight caps uploads being processed at once on this node;
	// more are answered 429 at once instead of queueing.
	MaxUploadsInFlight int
	// CodeFailuresPerHour and CodeFailureBurst bound wrong one-time codes
	// per client IP; past them its code uploads get 429.
	CodeFailuresPerHour float64
	CodeFailureBurst    int
}

// DefaultLimits suit a node that apps reach directly: an app publishes
// once per diagnosis and reads a few times a day.
func DefaultLimits() Limits {
	return Limits{PublishRate: 1, PublishBurst: 10, ReadRate: 20, ReadBurst: 60, MaxUploadsInFlight: 512,
		CodeFailuresPerHour: 10, CodeFailureBurst: 10}
}

// ipLimiter keeps one token bucket per client IP, forgetting idle ones.
type ipLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an untouched bucket is kept at least; it is
// forgotten only once full again.
const idleAfter = 10 * time.Minute

func newIPLimiter(perSecond float64, burst int, now func() time.Time) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &ipLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), now: now, buckets: map[string]*bucket{}}
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

// bucket returns ip's bucket, forgetting idle ones now and then; the
// caller holds the lock.
func (l *ipLimiter) bucket(ip string, now time.Time) *rate.Limiter {
	if now.Sub(l.swept) > idleAfter {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleAfter && b.lim.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k) // full again: forgetting it changes nothing
			}
		}
		l.swept = now
	}
	b := l.buckets[ip]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	return b.lim
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

// inFlight caps concurrent requests; over the cap it answers 429 at once.
func inFlight(max int) gin.HandlerFunc {
	if max <= 0 {
		return func(*gin.Context) {}
	}
	slots := make(chan struct{}, max)
	return func(c *gin.Context) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			c.Next()
		default:
			tooMany(c, time.Second, "too many uploads in flight on this node")
		}
	}
}

func tooMany(c *gin.Context, wait time.Duration, msg string) {
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(max(wait, time.Second).Seconds()))))
	c.AbortWithStatusJSON(http.StatusTooManyRequests, errorBody{Error: msg, Code: "rate_limited"})
}
