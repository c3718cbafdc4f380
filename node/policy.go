package node

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Policy is the region policy this node follows: the replicated one once
// set, and until then the defaults with this node's flags over them (so
// that a region whose policy is not yet replicated, during an upgrade for
// one, keeps the retention its operators configured). set tells which.
func (n *Node) Policy() (p *fsmpb.Policy, set bool) {
	p, set = n.fsm.Policy()
	if !set && n.cfg.Policy != nil {
		p = merged(p, n.cfg.Policy)
	}
	return p, set
}

// seedPolicy is a leader job: a region that has no policy yet gets the one
// this node was started with (its flags), so that every node follows one
// replicated policy from then on; operators change it with SET_POLICY.
func seedPolicy(ctx context.Context, n *Node) error {
	if _, set := n.fsm.Policy(); set || n.cfg.Policy == nil {
		return nil
	}
	// Padding by the day needs version 9 of every member (a new region's
	// first leader applies it as soon as it has recorded itself).
	for n.cfg.Policy.GetPaddingKeysPerDay() > 0 && n.RegionVersion() < command.DayPadding {
		if sleepCtx(ctx, time.Second) != nil {
			return nil
		}
	}
	_, err := command.SetPolicy(ctx, n, n.cfg.Policy)
	return err
}

// warnPolicy logs, once the state is caught up, where this node's flags
// disagree with the region policy it follows instead.
func (n *Node) warnPolicy(ctx context.Context) {
	if n.cfg.Policy == nil {
		return
	}
	for {
		if policy, set := n.fsm.Policy(); set {
			if want := merged(policy, n.cfg.Policy); !proto.Equal(want, policy) {
				n.cfg.Logger.Warn("this node's policy flags differ from the region policy; following the region policy (change it with `covid-node policy set`)",
					"flags", n.cfg.Policy.String(), "region", policy.String())
			}
			return
		}
		if sleepCtx(ctx, time.Second) != nil {
			return
		}
	}
}

// merged is the policy p with the fields set in q replacing its own.
func merged(p, q *fsmpb.Policy) *fsmpb.Policy {
	out := proto.CloneOf(p)
	proto.Merge(out, q)
	switch {
	case q.GetNoPadding():
		out.SealMinKeys, out.PaddingKeysPerDay = 0, 0
	case q.GetSealMinKeys() != 0:
		out.NoPadding, out.PaddingKeysPerDay = false, 0
	case q.GetPaddingKeysPerDay() != 0:
		out.NoPadding, out.SealMinKeys = false, 0
	}
	return out
}
