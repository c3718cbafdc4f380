package node

import (
	"io/fs"
	"path/filepath"
	"time"
)

// RaftStats are the figures operators watch raft by.
type RaftStats struct {
	Term, CommitIndex, LastIndex uint64
	// LastContact is how long ago a follower last heard from its leader
	// (0 on the leader; -1 never).
	LastContact time.Duration
	// SnapshotIndex and SnapshotBytes describe the newest snapshot.
	SnapshotIndex uint64
	SnapshotBytes int64
	// LeadershipChanges counts this node's gains and losses of leadership.
	LeadershipChanges uint64
}

// RaftStats reads raft's figures and the newest snapshot's.
func (n *Node) RaftStats() RaftStats {
	st := RaftStats{Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), LastIndex: n.raft.LastIndex(),
		LeadershipChanges: n.leadershipChanges.Load()}
	switch c := n.raft.Stats()["last_contact"]; c {
	case "never":
		st.LastContact = -1
	case "0":
	default:
		st.LastContact, _ = time.ParseDuration(c)
	}
	if list, err := n.snapshots.List(); err == nil && len(list) > 0 {
		st.SnapshotIndex, st.SnapshotBytes = list[0].Index, list[0].Size
	}
	return st
}

// DataDirBytes is the disk the node's data dir takes (raft log, snapshots).
func (n *Node) DataDirBytes() int64 {
	var total int64
	filepath.WalkDir(n.cfg.DataDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}
