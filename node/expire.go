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

// expireCutoff is the time before which retention removes batches: now
// minus retention, floored to whole UTC days (to multiples of the
// retention when that is shorter), so that a day leaves the exports at
// once instead of batch by batch, and its roll-up is renamed once, not at
// every run.
func expireCutoff(now, retention int64) int64 {
	step := min(int64(24*60*60), max(1, retention))
	cut := now - retention
	return cut - cut%step
}

// ExpireNow removes from the replicated state what retention (the region
// policy) no longer needs; the leader picks the cutoff, the state machine
// applies it the same everywhere.
func (n *Node) ExpireNow(ctx context.Context) (*fsmpb.ExpireResult, error) {
	policy, _ := n.Policy()
	cutoff := expireCutoff(n.cfg.Now().Unix(), policy.GetRetentionSeconds())
	res, err := command.Expire(ctx, n, &fsmpb.Expire{CutoffUnix: cutoff})
	if err != nil {
		return nil, fmt.Errorf("expire before %d: %w", cutoff, err)
	}
	if res.GetBatches() > 0 {
		n.cfg.Logger.Info("expired batches", "batches", res.GetBatches())
	}
	n.cfg.Logger.Debug("expired", "batches", res.GetBatches(), "keys", res.GetKeys(), "submissions", res.GetSubmissions())
	return res, nil
}
