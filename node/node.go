package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/covid-backend/covid-backend/fsm"
)

// Node is one running member of a region.
type Node struct {
	wakes     wakes
	cfg       Config
	fsm       *fsm.FSM
	raft      *raft.Raft
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	member    *memberMux // nil with plaintext raft
	// memberHTTP is the member port's listener for member HTTP.
	memberHTTP net.Listener
	memberOnce sync.Once
	client     *http.Client
	leaderCh   chan bool
	clock      clockState
	// writes times the writes committed through this node.
	writes Latencies
	// snapshots is raft's snapshot store, for backups.
	snapshots raft.SnapshotStore
	// leadershipChanges counts this node's gains and losses of leadership.
	leadershipChanges atomic.Uint64
	// leaderCaughtUp is the last term in which this node, as leader, had
	// applied every entry committed before it; caughtUp is set once, as a
	// follower, it had applied what its region had committed when it
	// first heard from it (Admitted).
	leaderCaughtUp atomic.Uint64
	caughtUp       atomic.Bool
	metrics        metrics
	// diskFree is the data dir's free space at the last measurement.
	diskFree atomic.Int64
	// watched is the raft store as raft writes it, timed (watchdog.go).
	watched *watchedStore

	// forwards are the writes waiting to be forwarded to the leader;
	// proposals those waiting for this leader's next raft round.
	forwards  batchQueue[*forward]
	proposals batchQueue[*proposal]
	// commits shares one fetch of the leader's commit index among the
	// requests that want it at once (CatchUp); nudges tells followers a
	// leader's commit index once a forwarded write commits (nudge.go).
	commits commitFetches
	nudges  nudges
	// runCtx lives until Close: the node's loops and requests end with it.
	runCtx context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// identity is written to the data dir on first start so that a restart with
// another id or region is refused instead of corrupting the region.
type identity struct {
	ID     string `json:"id"`
	Region string `json:"region"`
}

// Open starts raft on the data dir: it restores existing state, or
// bootstraps a new region, or (in the background) joins one.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// The log and snapshots hold code hashes and submissions: only this
	// node's user may enter the data dir (raft writes its files 0644).
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := applyRejoin(&cfg); err != nil {
		return nil, err
	}
	if len(cfg.Join) > 0 {
		if err := preflightJoin(ctx, cfg, newPeerClient(cfg)); err != nil {
			return nil, err
		}
	}
	if err := checkIdentity(cfg); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:      cfg,
		fsm:      fsm.New(),
		client:   newPeerClient(cfg),
		leaderCh: make(chan bool, 16),
		metrics:  newMetrics(),
	}
	n.fsm.SetHalt(cfg.Halt)
	free, err := freeBytes(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("free space of the data dir: %w", err)
	}
	n.diskFree.Store(free)
	hasState, err := n.openRaft()
	if err != nil {
		return nil, err
	}
	if err := writeIdentity(cfg); err != nil {
		n.shutdownRaft()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.runCtx, n.cancel = runCtx, cancel
	n.goRun(func() { n.watchLeadership(runCtx) })
	if !n.cfg.unrecorded {
		n.goRun(func() { n.registerSelf(runCtx) })
	}
	n.goRun(func() { n.warnPolicy(runCtx) })
	n.goRun(func() { n.diskLoop(runCtx) })
	n.goRun(func() { n.stallLoop(runCtx) })
	switch {
	case hasState:
		cfg.Logger.Info("restarting from existing state", "node", cfg.ID, "region", cfg.Region)
	case cfg.Bootstrap:
		if err := n.bootstrap(); err != nil {
			n.Close(ctx)
			return nil, err
		}
	case len(cfg.Join) > 0:
		n.goRun(func() { n.joinLoop(runCtx) })
	default:
		cfg.Logger.Warn("no existing state, no --bootstrap and no --join: waiting to be added by an operator")
	}
	return n, nil
}

// MemberListener is the member port's side for member HTTP (forwarded
// writes, joins, clocks), under the same mutual TLS as raft; nil with
// plaintext raft, where members use the API port and the admin token.
func (n *Node) MemberListener() net.Listener {
	if n.member == nil {
		return nil
	}
	n.memberOnce.Do(func() { n.memberHTTP = newMemberHTTPListener(n.member) })
	return n.memberHTTP
}

func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
}

func (n *Node) openRaft() (bool, error) {
	cfg := n.cfg
	store, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{
			Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType,
		},
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return false, fmt.Errorf("open raft store in %s: %w", cfg.DataDir, ErrNodeRunning)
	}
	if err != nil {
		return false, fmt.Errorf("open raft store in %s: it is damaged (%w); re-seed the node from its peers: %s", cfg.DataDir, err, reseedHint)
	}
	n.store = store
	n.watched = &watchedStore{LogStore: store, StableStore: store, stallFile: cfg.TestStallFile}
	logs, err := raft.NewLogCache(1024, n.watched)
	if err != nil {
		store.Close()
		return false, fmt.Errorf("log cache: %w", err)
	}
	hlog := newHCLogger(cfg.Logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		store.Close()
		return false, fmt.Errorf("snapshot store: %w", err)
	}
	n.snapshots = snaps
	trans, mux, err := newTransport(cfg.RaftAddr, cfg.RaftAdvertise, cfg.MemberTLS, hlog)
	if err != nil {
		store.Close()
		return false, err
	}
	n.transport, n.member = trans, mux
	hasState, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		n.closeStores()
		return false, fmt.Errorf("inspect raft state: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.ShutdownOnRemove = false
	rc.BatchApplyCh = !cfg.NoBatchApply
	rc.MaxAppendEntries = maxRoundEntries
	rc.NotifyCh = n.leaderCh
	rc.Logger = hlog
	r, err := raft.NewRaft(rc, timedFSM{FSM: n.fsm, observe: n.metrics.observeSnapshot}, logs, n.watched, snaps, trans)
	if err != nil {
		n.closeStores()
		return false, fmt.Errorf("start raft from %s (a damaged snapshot or log?): %w; re-seed the node from its peers: %s", cfg.DataDir, err, reseedHint)
	}
	n.raft = r
	if mux != nil {
		admit := n.mayRaft
		mux.admitRaft.Store(&admit)
	}
	return hasState, nil
}

func (n *Node) bootstrap() error {
	f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(n.cfg.ID), Address: n.transport.LocalAddr(), Suffrage: raft.Voter,
	}}})
	if err := f.Error(); err != nil {
		return fmt.Errorf("bootstrap region %s: %w", n.cfg.Region, err)
	}
	n.cfg.Logger.Info("bootstrapped new region", "region", n.cfg.Region, "node", n.cfg.ID)
	return nil
}

// Close stops the node. A leader first hands leadership to another voter so
// that the region does not wait for an election timeout.
func (n *Node) Close(ctx context.Context) error {
	if n.raft != nil && n.raft.State() == raft.Leader && n.voters() > 1 {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.cfg.Logger.Warn("leadership transfer before shutdown failed", "err", err)
		} else {
			n.cfg.Logger.Info("leadership transferred before shutdown")
		}
	}
	if n.cancel != nil {
		n.cancel()
	}
	err := n.shutdownRaft()
	n.wg.Wait()
	return err
}

func (n *Node) shutdownRaft() error {
	var err error
	if n.raft != nil {
		err = n.raft.Shutdown().Error()
	}
	return errors.Join(err, n.closeStores())
}

func (n *Node) closeStores() error {
	var errs []error
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// FSM returns the node's local copy of the region's state, for reads.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Snapshot asks raft for a snapshot now (operators, tests).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

func checkIdentity(cfg Config) error {
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "node.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read node identity: %w", err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return fmt.Errorf("read node identity: %w", err)
	}
	if id.ID != cfg.ID || id.Region != cfg.Region {
		return fmt.Errorf("data dir %s belongs to node %q of region %q, not node %q of region %q",
			cfg.DataDir, id.ID, id.Region, cfg.ID, cfg.Region)
	}
	return nil
}

func writeIdentity(cfg Config) error {
	b, _ := json.Marshal(identity{ID: cfg.ID, Region: cfg.Region})
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "node.json"), b, 0o600); err != nil {
		return fmt.Errorf("write node identity: %w", err)
	}
	return nil
}
