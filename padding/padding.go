// Package padding decides how many keys the leader's next batch holds when
// the region pads by the day: sizes that tell nothing of how many people
// uploaded, at a cost that follows the day rather than the number of
// seals.
//
// The leader seals at every seal interval, whatever was uploaded. Each
// batch holds a size drawn uniformly from its size bucket: bucket k spreads
// 2^k times the policy's day budget over the day's seals, ±25 %. Real keys
// fill it, oldest upload first, padding the rest; keys that do not fit wait
// for the next seal. So within a bucket every file's size is drawn from the
// same distribution, however many keys were uploaded, and the region
// serves the bucket's budget a day. The leader moves up a bucket only while
// more keys wait than three batches of the bucket take, and back down as
// soon as the backlog fits again: which bucket a file is in tells the load
// within a factor of two, which is what the policy accepts to show.
package padding

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Spread is how far a batch's size may lie from its bucket's mean, as a
// fraction of it.
const Spread = 0.25

// backlogSeals is how many batches of the current bucket the waiting keys
// may fill before the leader moves up a bucket: enough that a few uploads
// at once do not show, few enough that keys wait minutes, not hours.
const backlogSeals = 3

// maxBucket bounds the doubling (2^16 times the budget).
const maxBucket = 16

// MaxKeys bounds a batch's size, however large the budget and the bucket
// (the random keys for it travel in the raft log entry of the seal).
const MaxKeys = 100_000

// Plan is a region's padding by the day.
type Plan struct {
	// PerDay is the budget of bucket 0: the keys a day's batches hold in
	// all, real and padding, while uploads stay within it.
	PerDay int
	// Interval is the seal interval: the day has 24h/Interval batches.
	Interval time.Duration
}

// Mean is the mean size of a batch in bucket k.
func (p Plan) Mean(k int) float64 {
	return float64(p.PerDay) * float64(int(1)<<k) * p.Interval.Seconds() / (24 * 3600)
}

// Range is the smallest and largest size of a batch in bucket k (at least
// one key, at most MaxKeys).
func (p Plan) Range(k int) (lo, hi int) {
	m := p.Mean(k)
	return max(1, min(MaxKeys, int(m*(1-Spread)))), max(1, min(MaxKeys, int(m*(1+Spread))))
}

// Bucket is the bucket for a seal while backlog keys (real and revised)
// wait: the smallest whose batches take them in backlogSeals seals, or, if
// all is set (an operator's "seal now", which publishes everything), in
// one.
func (p Plan) Bucket(backlog int, all bool) int {
	seals := backlogSeals
	if all {
		seals = 1
	}
	k := 0
	for ; k < maxBucket; k++ {
		if lo, hi := p.Range(k); backlog <= seals*lo || hi == MaxKeys {
			break // the keys fit, or the bucket is as large as a batch may be
		}
	}
	return k
}

// Size draws the size of the next batch in bucket k from random (the
// leader's crypto/rand; tests pass a seeded source).
func (p Plan) Size(random io.Reader, k int) (int, error) {
	lo, hi := p.Range(k)
	var b [8]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return 0, fmt.Errorf("draw a batch size: %w", err)
	}
	return lo + int(binary.BigEndian.Uint64(b[:])%uint64(hi-lo+1)), nil
}

// Next is the size of the next batch while backlog keys wait: a draw from
// the bucket Bucket chooses.
func (p Plan) Next(backlog int, all bool) (int, error) {
	return p.Size(rand.Reader, p.Bucket(backlog, all))
}

// RandomKeys is how many random keys the leader sends for a batch of size
// target while backlog keys wait: what the batch lacks, and a margin for
// keys that arrive, or leave, before the seal applies (its view of the
// state may lag the leader's log).
func RandomKeys(target, backlog int) int {
	return max(0, target-backlog) + target/4 + 8
}
