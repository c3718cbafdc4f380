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
	"os"
	"regexp"
	"time"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/membertls"
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
	// RaftAdvertise, if set, is how peers reach the raft transport instead
	// (a proxy or NAT in between); the same IP as RaftAddr, another port.
	RaftAdvertise string
	// Bootstrap starts a new region with this node as its only voter, when
	// the data dir holds no raft state yet.
	Bootstrap bool
	// Edge joins the region as a read-only edge node: a raft non-voter
	// that holds the whole state and serves every read, forwards writes,
	// and never counts toward quorum.
	Edge bool
	// Join lists members to ask for admission, when the data dir holds no
	// raft state yet: their member ports (raft addresses, host:port) with
	// a member credential, their API URLs with plaintext raft.
	Join []string
	// AdminToken authenticates operators' admin requests, and with
	// plaintext raft also requests between members.
	AdminToken string
	// MemberTLS is the member credential: raft runs over mutual TLS 1.3
	// with it, so that only holders of a certificate of the region CA can
	// speak raft to this node. Nil: plaintext raft (development only).
	MemberTLS *membertls.Credentials
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
	// Policy is the region policy (retention, padding, code lifetime) a
	// region without one starts with; nil leaves the defaults. Once a
	// policy is replicated every node follows it, whatever its flags say.
	Policy *fsmpb.Policy
	// ExportSigners are the export keys that sign the files of batches this
	// node seals as leader (every node holds their private keys); a key
	// retired from here still signs the files sealed while it was in force.
	ExportSigners []*fsmpb.ExportSigner
	// WriteTimeout bounds how long a write waits for a leader.
	WriteTimeout time.Duration
	// StallTimeout is how long a write to the raft store may hang before
	// the node stops (Stalled); default 10 s.
	StallTimeout time.Duration
	// Stalled is called once when a raft store write has hung for longer
	// than StallTimeout (default: log the reason and exit with status 4,
	// which the service manager restarts).
	Stalled func(error)
	// TestStallFile, for fault tests only: while this file exists, writes
	// to the raft store hang.
	TestStallFile string
	// MinFreeDisk is the free space, in bytes, the data dir keeps in
	// reserve: below it the node takes no writes (DiskFullError).
	MinFreeDisk int64
	// LeaderJobs run each time this node becomes leader, with a context
	// that ends with the leadership; a job that fails is retried.
	LeaderJobs []LeaderJob
	// Logger receives the node's logs; raft's own go to it as well.
	Logger *slog.Logger
	// Now is the node's clock, read where the leader stamps commands and
	// picks seal and retention times (default time.Now).
	Now func() time.Time
	// Halt stops the node at a log entry its build cannot apply (default:
	// log the reason and exit with status 3, so that an operator upgrades
	// the node instead of running it with drifting state).
	Halt func(error)

	// unrecorded keeps the node from recording itself in the region
	// (registerSelf), so that a test holds it, deterministically, in the
	// moment after a bootstrap before its record is applied.
	unrecorded bool
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
	if c.MemberTLS != nil && c.MemberTLS.Leaf.Subject.CommonName != c.ID {
		errs = append(errs, fmt.Errorf("node certificate names node %q, this node is %q: members know each other by the id their certificate names (covid-node certs node --id %s)",
			c.MemberTLS.Leaf.Subject.CommonName, c.ID, c.ID))
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftAddr
	} else if hostIP(c.RaftAdvertise) == nil || !hostIP(c.RaftAdvertise).Equal(hostIP(c.RaftAddr)) {
		errs = append(errs, fmt.Errorf("raft advertise address %q: want the IP of the raft address with another port (the node dials its peers from that IP)", c.RaftAdvertise))
	}
	for name, addr := range map[string]string{"http address": c.HTTPAddr, "raft address": c.RaftAddr} {
		if err := checkHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if c.Bootstrap && len(c.Join) > 0 {
		errs = append(errs, errors.New("bootstrap and join exclude each other"))
	}
	if c.Edge && c.Bootstrap {
		errs = append(errs, errors.New("an edge node does not vote, so it cannot start a region: join it to one"))
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
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 10 * time.Second
	}
	if c.MinFreeDisk == 0 {
		c.MinFreeDisk = 256 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Stalled == nil {
		logger := c.Logger
		c.Stalled = func(err error) {
			logger.Error("raft store stalled", "err", err)
			os.Exit(4)
		}
	}
	if c.Halt == nil {
		logger := c.Logger
		c.Halt = func(err error) {
			logger.Error("state machine stopped: this build cannot apply the region's log; run a build that knows the entry", "err", err)
			os.Exit(3)
		}
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
