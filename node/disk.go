package node

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// DiskFullError refuses a write on a node whose data dir has less free
// space than its reserve: raft must not run out of disk halfway through an
// entry (a term it cannot save stops the process), so the node takes no
// writes until space returns, while it goes on serving reads. Callers
// answer 503: another node, or this one later, takes the write.
type DiskFullError struct {
	Free, Reserve int64
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("the data dir of this node has %d MiB free, below its reserve of %d MiB: it takes no writes until space returns",
		e.Free>>20, e.Reserve>>20)
}

// diskCheckEvery is how often the node measures the free space of its data
// dir.
const diskCheckEvery = time.Second

// diskLoop measures the data dir's free space until ctx ends. When space
// runs low on the leader it hands leadership to a member with room.
func (n *Node) diskLoop(ctx context.Context) {
	for {
		free, err := freeBytes(n.cfg.DataDir)
		if err != nil {
			n.cfg.Logger.Warn("cannot measure the free space of the data dir", "dir", n.cfg.DataDir, "err", err)
		} else {
			low := free < n.cfg.MinFreeDisk
			if was := n.diskFree.Swap(free) < n.cfg.MinFreeDisk; low != was {
				n.diskLow(low, free)
			}
		}
		if sleepCtx(ctx, diskCheckEvery) != nil {
			return
		}
	}
}

func (n *Node) diskLow(low bool, free int64) {
	if !low {
		n.cfg.Logger.Info("the data dir has room again: taking writes", "free_mib", free>>20)
		return
	}
	n.cfg.Logger.Error("the data dir is almost full: this node takes no writes until space returns", "free_mib", free>>20, "reserve_mib", n.cfg.MinFreeDisk>>20)
	if n.IsLeader() {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.cfg.Logger.Warn("leadership transfer for want of disk", "err", err)
		}
	}
}

// CheckDisk refuses a write while the data dir is below its reserve
// (a *DiskFullError), as every write through this node is refused.
func (n *Node) CheckDisk() error { return n.checkDisk() }

// checkDisk refuses a write while the data dir is below its reserve.
func (n *Node) checkDisk() error {
	if free := n.diskFree.Load(); free < n.cfg.MinFreeDisk {
		return &DiskFullError{Free: free, Reserve: n.cfg.MinFreeDisk}
	}
	return nil
}

// DiskFree is the free space of the data dir at the last measurement.
func (n *Node) DiskFree() int64 { return n.diskFree.Load() }

// diskError turns a write that failed for want of space into a
// DiskFullError.
func (n *Node) diskError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return &DiskFullError{Free: n.diskFree.Load(), Reserve: n.cfg.MinFreeDisk}
	}
	return err
}

func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
