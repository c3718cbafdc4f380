package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// MaxClockSkew is how far the leader's clock may be from a majority of the
// region's clocks before it stops stamping commands.
const MaxClockSkew = time.Minute

// PathClock is the member endpoint that tells a member's clock.
const PathClock = "/internal/v1/clock"

// clockCheckEvery is how often the leader compares clocks; a result older
// than clockStale is measured again before the next command is stamped.
const (
	clockCheckEvery = 10 * time.Second
	clockStale      = 30 * time.Second
)

// ErrClockDisagrees means the leader's clock differs from the clocks of a
// majority of the region's members by more than MaxClockSkew: it stamps no command (a
// stamp too far ahead would publish keys that are still valid or expire
// the region's keys, and command time never goes back), and hands
// leadership to another member.
var ErrClockDisagrees = errors.New("the leader's clock disagrees with a majority of the region")

// ErrClockUnconfirmed means the leader could not confirm its clock with a
// majority of the region (members down, or as many disagreeing as
// agreeing): it seals and expires nothing, the commands whose effect
// depends most on the time, until it can.
var ErrClockUnconfirmed = errors.New("the leader cannot confirm its clock with a majority of the region")

// ClockReport is the leader's last comparison of its clock with the other
// members' (offsets are theirs minus its own). Agrees: a majority of the
// region (this node included) is within MaxClockSkew; Disagrees: a
// majority is measured further away; neither while too few answered.
type ClockReport struct {
	Checked           time.Time
	Agrees, Disagrees bool
	Offsets           map[string]time.Duration
}

// MaxOffset is the largest offset of another member's clock, either way.
func (r ClockReport) MaxOffset() time.Duration {
	var m time.Duration
	for _, d := range r.Offsets {
		m = max(m, d.Abs())
	}
	return m
}

type clockState struct {
	mu     sync.Mutex
	report ClockReport
}

// MemberClock is what PathClock answers: the member's time.
type MemberClock struct {
	UnixNano int64 `json:"unix_nano"`
}

// Clock is this node's time, as it would stamp a command.
func (n *Node) Clock() MemberClock { return MemberClock{UnixNano: n.cfg.Now().UnixNano()} }

// Clocks returns the leader's last clock comparison (zero on a node that
// has not led since it started).
func (n *Node) Clocks() ClockReport {
	n.clock.mu.Lock()
	defer n.clock.mu.Unlock()
	return n.clock.report
}

// clockLoop is a leader job: it compares clocks at once and then every
// clockCheckEvery, and gives leadership away while this node's clock
// disagrees with the region.
func clockLoop(ctx context.Context, n *Node) error {
	for {
		if r := n.checkClocks(ctx); r.Disagrees && ctx.Err() == nil {
			n.cfg.Logger.Error("this node's clock disagrees with a majority of the region by more than a minute: it stamps no command and hands leadership on; fix its time",
				"offsets", fmt.Sprint(r.Offsets))
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.cfg.Logger.Warn("leadership transfer after clock disagreement", "err", err)
			}
		}
		if sleepCtx(ctx, clockCheckEvery) != nil {
			return nil
		}
	}
}

// clockAgrees tells whether this leader may stamp a command of the given
// type, measuring the clocks first when the last comparison is stale: no
// command while a majority disagrees, no seal or expiry until a majority
// agrees.
func (n *Node) clockAgrees(ctx context.Context, t fsmpb.CommandType) error {
	r := n.Clocks()
	if n.cfg.Now().Sub(r.Checked).Abs() > clockStale {
		r = n.checkClocks(ctx)
	}
	timeCritical := t == fsmpb.CommandType_COMMAND_TYPE_SEAL || t == fsmpb.CommandType_COMMAND_TYPE_EXPIRE
	switch {
	case r.Disagrees:
		return fmt.Errorf("%w (offsets of the others %v)", ErrClockDisagrees, r.Offsets)
	case !r.Agrees && timeCritical:
		return fmt.Errorf("%w (offsets of those that answered %v)", ErrClockUnconfirmed, r.Offsets)
	}
	return nil
}

// checkClocks measures the other members' clocks and records whether a
// majority of the region agrees with this node's clock (itself included),
// or a majority disagrees. A member that does not answer (down, or not yet
// recorded while it joins) counts neither way.
func (n *Node) checkClocks(ctx context.Context) ClockReport {
	servers, err := n.servers()
	r := ClockReport{Checked: n.cfg.Now(), Offsets: map[string]time.Duration{}}
	if err == nil {
		agree, disagree, majority := 1, 0, len(servers)/2+1
		for id, off := range n.measure(ctx, servers) {
			r.Offsets[id] = off
			if off.Abs() > MaxClockSkew {
				disagree++
			} else {
				agree++
			}
		}
		r.Agrees, r.Disagrees = agree >= majority, disagree >= majority
	}
	n.clock.mu.Lock()
	n.clock.report = r
	n.clock.mu.Unlock()
	return r
}

// measure asks every other voter for its clock, in parallel, and returns
// each offset from this node's clock (half the round trip allowed for).
func (n *Node) measure(ctx context.Context, servers []raft.Server) map[string]time.Duration {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]time.Duration{}
	for _, s := range servers {
		id := string(s.ID)
		m, ok := n.fsm.Node(id)
		if id == n.cfg.ID || !ok || m.GetHttpAddr() == "" {
			continue // a member not recorded yet (joining) is not asked
		}
		url := n.memberURL(string(s.Address), m.GetHttpAddr()) + PathClock
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := n.cfg.Now()
			var mc MemberClock
			status, err := n.call(ctx, http.MethodGet, url, "", nil, &mc)
			back := n.cfg.Now()
			if err != nil || status != http.StatusOK {
				return
			}
			mu.Lock()
			out[id] = time.Unix(0, mc.UnixNano).Sub(sent.Add(back.Sub(sent) / 2))
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
