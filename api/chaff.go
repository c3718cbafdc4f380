package api

import (
	"math/rand/v2"
	"sync"
	"time"
)

// latencies remembers how long recent real uploads took, so that a decoy
// (chaff) upload can take as long as a real one: an observer of the
// traffic must not tell them apart by timing.
type latencies struct {
	mu   sync.Mutex
	ring [128]time.Duration
	n    int
}

// defaultChaffDelay stands in until real uploads have been seen.
const defaultChaffDelay = 20 * time.Millisecond

func (l *latencies) record(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.mu.Unlock()
}

// sample returns the duration of a random recent real upload.
func (l *latencies) sample() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return defaultChaffDelay
	}
	return l.ring[rand.IntN(min(l.n, len(l.ring)))]
}
