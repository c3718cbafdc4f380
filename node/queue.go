package node

import "sync"

// batchQueue holds work waiting to go out in batches (forwards to the
// leader, proposals to raft) and counts the goroutines sending them: at
// most a limit, each sending one batch at a time, so that work arriving
// while they are busy goes together in a later batch instead of one
// request or raft round each.
type batchQueue[T any] struct {
	mu      sync.Mutex
	pending []T
	senders int
}

// push queues item and reports whether the caller must start a sender
// (drain): fewer than limit are running.
func (q *batchQueue[T]) push(item T, limit int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, item)
	if q.senders >= limit {
		return false
	}
	q.senders++
	return true
}

// waiting is how many items wait for a batch.
func (q *batchQueue[T]) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// take removes the next batch, which pick chooses from the waiting work
// (returning the batch and what keeps waiting). With an empty batch it
// counts the sender out and returns nil.
func (q *batchQueue[T]) take(pick func([]T) (batch, rest []T)) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch, rest := pick(q.pending)
	q.pending = rest
	if len(batch) == 0 {
		q.senders--
		return nil
	}
	return batch
}

// drain is a sender: it sends batches until none waits, or until send
// reports that the node closes.
func drain[T any](q *batchQueue[T], pick func([]T) (batch, rest []T), send func([]T) bool) {
	for {
		batch := q.take(pick)
		if batch == nil || !send(batch) {
			return
		}
	}
}
