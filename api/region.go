package api

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
)

// Region is all the API asks of its node, so that the API translates HTTP
// and decides nothing: *node.Node is the one a running binary gives it; a
// test may give the state machine alone, with no raft (region_test.go).
// Grouped by what each part serves.
type Region interface {
	// Writes go through the region's leader.
	command.Applier
	RegionReads
	RegionHealth
	RegionMembers
	RegionJobs
}

// RegionReads are reads of the replicated state, and the waits that make
// them current.
type RegionReads interface {
	FSM() *fsm.FSM
	Config() node.Config
	Policy() (p *fsmpb.Policy, set bool)
	ConsistentRead(ctx context.Context) error
	CatchUp(ctx context.Context) error
	LeaderReadIndex() (node.ReadIndex, error)
	LeaderAppliedIndex() (node.ReadIndex, error)
}

// RegionHealth is what probes, status pages and metrics report.
type RegionHealth interface {
	Ready() bool
	Admitted() bool
	IsLeader() bool
	AppliedIndex() uint64
	RegionVersion() uint32
	Status() (node.Status, error)
	PublicStatus() node.PublicStatus
	RaftStats() node.RaftStats
	Clock() node.MemberClock
	Clocks() node.ClockReport
	WriteLatency() (time.Duration, bool)
	DiskFree() int64
	CheckDisk() error
	DataDirBytes() int64
	Collectors() []prometheus.Collector
}

// RegionMembers are the region's membership and its member port.
type RegionMembers interface {
	Members() ([]node.Member, error)
	Join(ctx context.Context, req node.JoinRequest) error
	Remove(ctx context.Context, id string) error
	Promote(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
	IsMember(p node.Peer) bool
	InConfiguration(id string) bool
	MemberListener() net.Listener
	ApplyForwardedBatch(ctx context.Context, body []byte) (int, []byte)
}

// RegionJobs are the leader's jobs an operator runs now, and the state as
// a whole.
type RegionJobs interface {
	SealNow(ctx context.Context) (*fsmpb.SealResult, error)
	ExpireNow(ctx context.Context) (*fsmpb.ExpireResult, error)
	Snapshot() error
	BackupSnapshot(ctx context.Context) (*raft.SnapshotMeta, io.ReadCloser, error)
	RestoreState(ctx context.Context, snapshot io.Reader, size int64, force bool) error
	Wake(ctx context.Context, name string) error
	WakeHere(name string)
}

var _ Region = (*node.Node)(nil)
