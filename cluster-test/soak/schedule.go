package soak

import (
	"math/rand/v2"
	"time"
)

// FaultKind is one kind of fault the nemesis injects.
type FaultKind string

// The kinds of fault, each healed before the next is drawn unless said.
const (
	// Kill is kill -9 of a node, restarted after the fault's duration.
	Kill FaultKind = "kill -9 and restart"
	// KillLeader is Kill aimed at the region's leader.
	KillLeader FaultKind = "kill -9 of the leader"
	// Pause is SIGSTOP of a node, SIGCONT after the duration.
	Pause FaultKind = "SIGSTOP, SIGCONT"
	// PartitionNode cuts one node off from its region's other nodes.
	PartitionNode FaultKind = "partition a node from its region"
	// PartitionRegions cuts every link between two regions.
	PartitionRegions FaultKind = "partition between regions"
	// TransferLeadership hands leadership to another member.
	TransferLeadership FaultKind = "leadership transfer"
	// ReplaceMember removes a node from its region and adds a fresh one.
	ReplaceMember FaultKind = "remove a member, add a fresh one"
	// ClockJump restarts a node with its clock moved by the duration's
	// worth of minutes, ahead or behind, and back after the duration.
	ClockJump FaultKind = "clock jump"
	// LinkDelay slows every member link of a node (raft and member HTTP,
	// through the harness's proxy) by Delay per chunk.
	LinkDelay FaultKind = "member links slowed"
	// LinkStall stops every member link of a node passing bytes, its
	// connections left open.
	LinkStall FaultKind = "member links stalled"
	// LinkCut cuts every connection of a node's member links, again and
	// again while the fault lasts.
	LinkCut FaultKind = "member connections cut"
)

// Kinds lists every kind the nemesis draws from, in a fixed order.
var Kinds = []FaultKind{Kill, KillLeader, Pause, PartitionNode, PartitionRegions, TransferLeadership, ReplaceMember, ClockJump,
	LinkDelay, LinkStall, LinkCut}

// Fault is one drawn fault: its kind, the region and node index it aims
// at (resolved by the harness against the live members), how long it lasts
// and, for clock jumps, the offset.
type Fault struct {
	Kind   FaultKind
	Region int
	Node   int
	For    time.Duration
	Offset time.Duration
	// Delay is what LinkDelay adds per chunk.
	Delay time.Duration
	// Rest is the quiet time after healing, before the next fault.
	Rest time.Duration
}

// Schedule draws faults from a seed: the same seed gives the same faults
// in the same order, so a failing run can be replayed. Each fault lasts
// 1-8 s and is followed by 1-4 s of quiet.
type Schedule struct {
	rng     *rand.Rand
	regions int
}

// NewSchedule draws from seed over the given number of regions.
func NewSchedule(seed uint64, regions int) *Schedule {
	return &Schedule{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), regions: regions}
}

// Next draws the next fault.
func (s *Schedule) Next() Fault {
	f := Fault{
		Kind:   Kinds[s.rng.IntN(len(Kinds))],
		Region: s.rng.IntN(s.regions),
		Node:   s.rng.IntN(1 << 16),
		For:    time.Duration(1000+s.rng.IntN(7000)) * time.Millisecond,
		Rest:   time.Duration(1000+s.rng.IntN(3000)) * time.Millisecond,
	}
	if f.Kind == ClockJump {
		f.Offset = time.Duration(2+s.rng.IntN(58)) * time.Minute
		if s.rng.IntN(2) == 0 {
			f.Offset = -f.Offset
		}
	}
	if f.Kind == LinkDelay {
		f.Delay = time.Duration(20+s.rng.IntN(280)) * time.Millisecond
	}
	if f.Kind == PartitionRegions && s.regions < 2 {
		f.Kind = PartitionNode
	}
	return f
}
