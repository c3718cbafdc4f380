package node

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Latencies keeps how long recent operations took, so that one can be drawn
// at random: a decoy upload takes as long as a real one, and before a node
// has seen a real upload, as long as a real write through it.
type Latencies struct {
	mu   sync.Mutex
	ring [128]time.Duration
	n    int
}

// Record notes one operation's duration.
func (l *Latencies) Record(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.mu.Unlock()
}

// Sample returns the duration of a random recent operation; false when none
// was recorded.
func (l *Latencies) Sample() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return 0, false
	}
	return l.ring[rand.IntN(min(l.n, len(l.ring)))], true
}

// WriteLatency draws the duration of a recent write committed through this
// node (forwarded to the leader on a follower, as an upload is).
func (n *Node) WriteLatency() (time.Duration, bool) { return n.writes.Sample() }
