package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/covid-backend/covid-backend/command"
)

// ErrNotLeaderForBackup means a backup or restore was asked of a follower:
// only the leader has, for certain, everything committed.
var ErrNotLeaderForBackup = errors.New("backups and restores go through the leader")

// ErrNotFresh means a restore was asked of a region that already holds
// keys or batches: restoring replaces the whole state.
var ErrNotFresh = errors.New("the region already holds keys or batches; restore seeds a new region (force to replace)")

// backupTimeout bounds the snapshot and restore of a large state.
const backupTimeout = 5 * time.Minute

// BackupSnapshot takes a consistent copy of the region's state on the leader,
// after everything committed is applied, while writes go on: a raft
// snapshot, or the newest one when nothing was applied since. The caller
// closes the reader.
func (n *Node) BackupSnapshot(ctx context.Context) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if n.raft.State() != raft.Leader {
		return nil, nil, ErrNotLeaderForBackup
	}
	if err := waitFuture(ctx, n.raft.Barrier(backupTimeout)); err != nil {
		return nil, nil, fmt.Errorf("backup: barrier: %w", err)
	}
	f := n.raft.Snapshot()
	err := waitFuture(ctx, f)
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		list, lerr := n.snapshots.List()
		if lerr != nil || len(list) == 0 {
			return nil, nil, fmt.Errorf("backup: no snapshot to copy: %v", errors.Join(err, lerr))
		}
		return n.snapshots.Open(list[0].ID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("backup: snapshot: %w", err)
	}
	return f.Open()
}

// RestoreState replaces the region's state with a snapshot (from a backup
// of the same region): the leader takes it on and installs it on its
// followers, keeping the region's own members. Unless force is set the
// region must be new (no keys, no batches). Member records of the backed
// up region that are not members here are removed afterwards.
func (n *Node) RestoreState(ctx context.Context, snapshot io.Reader, size int64, force bool) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeaderForBackup
	}
	if !force && (n.fsm.NumKeys() > 0 || n.fsm.LastBatch() > 0) {
		return ErrNotFresh
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size}
	if err := n.raft.Restore(meta, snapshot, backupTimeout); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	members, err := n.Members()
	if err != nil {
		return err
	}
	here := map[string]bool{}
	for _, m := range members {
		here[m.ID] = true
	}
	for _, rec := range n.fsm.Nodes() {
		if !here[rec.GetId()] {
			if err := command.RemoveNode(ctx, n, rec.GetId()); err != nil {
				return fmt.Errorf("restore: forget member %s of the backed-up region: %w", rec.GetId(), err)
			}
		}
	}
	n.cfg.Logger.Info("region state restored from a backup", "bytes", size)
	return nil
}
