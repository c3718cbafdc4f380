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
}

// DefaultLimits suit a node that apps reach directly: an app publishes
// once per diagnosis and reads a few times a day.
func DefaultLimits() Limits {
	return Limits{PublishRate: 1, PublishBurst: 10, ReadRate: 20, ReadBurst: 60, MaxUploadsInFlight: 512}
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

// idleAfter is how long an untouched bucket is kept; by then it is full
// again, so forgetting it changes nothing.
const idleAfter = 10 * time.Minute

func newIPLimiter(perSecond float64, burst int, now func() time.Time) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &ipLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), now: now, buckets: map[string]*bucket{}}
}

// reserve takes a token for ip, or says how long until one is free.
func (l *ipLimiter) reserve(ip string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > idleAfter {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleAfter {
				delete(l.buckets, k)
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
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// rateLimit answers 429 with Retry-After when the client IP is over its
// rate. The client IP honours X-Forwarded-For only from trusted proxies.
func rateLimit(l *ipLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if l == nil {
			return
		}
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
