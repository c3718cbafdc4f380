package node

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// watchedStore is the raft log and stable store as raft sees it: every
// write is timed, so that a write that hangs (a disk whose fsync never
// returns) is noticed by stallLoop. With a stall file set (fault tests
// only) writes block while that file exists.
type watchedStore struct {
	raft.LogStore
	raft.StableStore
	// since is when the write in progress began (UnixNano), 0 when none.
	since     atomic.Int64
	stallFile string
}

func (w *watchedStore) write(f func() error) error {
	w.since.Store(time.Now().UnixNano())
	defer w.since.Store(0)
	for w.stallFile != "" {
		if _, err := os.Stat(w.stallFile); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f()
}

func (w *watchedStore) StoreLog(l *raft.Log) error {
	return w.write(func() error { return w.LogStore.StoreLog(l) })
}

func (w *watchedStore) StoreLogs(logs []*raft.Log) error {
	return w.write(func() error { return w.LogStore.StoreLogs(logs) })
}

func (w *watchedStore) DeleteRange(min, max uint64) error {
	return w.write(func() error { return w.LogStore.DeleteRange(min, max) })
}

func (w *watchedStore) Set(k, v []byte) error {
	return w.write(func() error { return w.StableStore.Set(k, v) })
}

func (w *watchedStore) SetUint64(k []byte, v uint64) error {
	return w.write(func() error { return w.StableStore.SetUint64(k, v) })
}

// stalled tells how long the write in progress has taken (0: none).
func (w *watchedStore) stalled() time.Duration {
	if since := w.since.Load(); since != 0 {
		return time.Since(time.Unix(0, since))
	}
	return 0
}

// stallLoop stops the node (Config.Stalled) when a write to the raft
// store has hung for longer than Config.StallTimeout. raft writes its log
// from the leader's main loop: a leader whose disk hangs blocks there,
// yet its replication goroutines go on sending heartbeats, so the region
// would wait for it for ever and no leadership transfer could get through.
// Stopping the process lets the others elect a leader within an election
// timeout; the service manager restarts it.
func (n *Node) stallLoop(ctx context.Context) {
	for {
		if d := n.watched.stalled(); d > n.cfg.StallTimeout {
			n.cfg.Stalled(fmt.Errorf("a write to the raft log has hung for %v (more than %v): stopping so that the region goes on without this node",
				d.Round(time.Millisecond), n.cfg.StallTimeout))
			return
		}
		if sleepCtx(ctx, n.cfg.StallTimeout/10) != nil {
			return
		}
	}
}
