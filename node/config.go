// Package node runs one member of a region: raft wiring and storage,
// bootstrap and join, forwarding of writes to the leader, membership changes,
// leader-only jobs and an orderly shutdown.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"
)

// Config is what one node needs to run.
type Config struct {
	// ID names the node in the raft configuration; unique in its region.
	ID string
	// Region names the region; a node joins only a region of the same name.
	Region string
	// DataDir holds the raft log, stable store and snapshots.
	DataDir string
	// HTTPAddr is where the node's API listens and how peers reach it.
	HTTPAddr string
	// RaftAddr is where the raft transport listens and how peers reach it.
	RaftAddr string
	// Bootstrap starts a new region with this node as its only voter, when
	// the data dir holds no raft state yet.
	Bootstrap bool
	// Join lists HTTP base URLs of members to ask for admission, when the
	// data dir holds no raft state yet.
	Join []string
	// AdminToken authenticates admin requests and forwarding between
	// members; every node of a region shares it.
	AdminToken string
	// SnapshotInterval and SnapshotThreshold tune raft's snapshotting.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// TrailingLogs is how many log entries a snapshot leaves behind; a
	// follower further behind catches up from a snapshot instead.
	TrailingLogs uint64
	// NoBatchApply turns off raft's batching of concurrent Apply calls into
	// one log write (on by default; off only to measure what it brings).
	NoBatchApply bool
	// SealInterval is how often the leader seals expired keys into a batch.
	SealInterval time.Duration
	// SealMinKeys is the size below which a batch is padded with random
	// keys (plus up to 100 more at random, as the GAEN reference does).
	SealMinKeys int
	// Retention is how long sealed batches (and their keys) are kept after
	// they end, and unpublished keys after their validity ends.
	Retention time.Duration
	// WriteTimeout bounds how long a write waits for a leader.
	WriteTimeout time.Duration
	// LeaderJobs run each time this node becomes leader, with a context
	// that ends with the leadership; a job that fails is retried.
	LeaderJobs []LeaderJob
	// Logger receives the node's logs; raft's own go to it as well.
	Logger *slog.Logger
}

// LeaderJob is work only the leader does, such as registering defaults.
type LeaderJob func(ctx context.Context, n *Node) error

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	var errs []error
	if !idPattern.MatchString(c.ID) {
		errs = append(errs, fmt.Errorf("node id %q: want 1-63 letters, digits, '.', '_' or '-'", c.ID))
	}
	if !idPattern.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("region %q: want 1-63 letters, digits, '.', '_' or '-'", c.Region))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	for name, addr := range map[string]string{"http address": c.HTTPAddr, "raft address": c.RaftAddr} {
		if err := checkHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if c.Bootstrap && len(c.Join) > 0 {
		errs = append(errs, errors.New("bootstrap and join exclude each other"))
	}
	if c.AdminToken == "" {
		errs = append(errs, errors.New("admin token is required"))
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SealInterval == 0 {
		c.SealInterval = 10 * time.Minute
	}
	if c.SealMinKeys < 0 {
		errs = append(errs, errors.New("seal minimum keys must not be negative"))
	}
	if c.Retention == 0 {
		c.Retention = 14 * 24 * time.Hour
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: want an IP address and port that peers can reach", addr)
	}
	if port == "0" || port == "" {
		return fmt.Errorf("%q: want a fixed port", addr)
	}
	return nil
}
