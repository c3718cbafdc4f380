package node

import (
	"context"
	"fmt"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// expireLoop applies retention while this node leads, as often as it seals
// but at least hourly.
func expireLoop(ctx context.Context, n *Node) error {
	return every(ctx, min(n.cfg.SealInterval, time.Hour), func() {
		if _, err := n.ExpireNow(ctx); err != nil {
			n.cfg.Logger.Warn("expire failed", "err", err)
		}
	})
}

// ExpireNow removes from the replicated state what retention (the region
// policy) no longer needs; the leader picks the cutoff, the state machine
// applies it the same everywhere.
func (n *Node) ExpireNow(ctx context.Context) (*fsmpb.ExpireResult, error) {
	policy, _ := n.fsm.Policy()
	cutoff := n.cfg.Now().Unix() - policy.GetRetentionSeconds()
	res, err := command.Expire(ctx, n, &fsmpb.Expire{CutoffUnix: cutoff})
	if err != nil {
		return nil, fmt.Errorf("expire before %d: %w", cutoff, err)
	}
	if res.GetBatches()+res.GetKeys()+res.GetSubmissions() > 0 {
		n.cfg.Logger.Info("expired", "batches", res.GetBatches(), "keys", res.GetKeys(), "submissions", res.GetSubmissions())
	}
	return res, nil
}
