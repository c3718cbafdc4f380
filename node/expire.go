package node

import (
	"context"
	"fmt"
	"time"

	"github.com/covid-backend/covid-backend/fsm"
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

// ExpireNow removes from the replicated state what retention no longer
// needs; the leader picks the cutoff, the state machine applies it the same
// everywhere.
func (n *Node) ExpireNow(ctx context.Context) (fsm.ExpireResult, error) {
	cutoff := time.Now().Add(-n.cfg.Retention).Unix()
	val, err := n.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE,
		Expire: &fsmpb.Expire{CutoffUnix: cutoff}})
	if err != nil {
		return fsm.ExpireResult{}, fmt.Errorf("expire before %d: %w", cutoff, err)
	}
	res, _ := val.(fsm.ExpireResult)
	if res.Batches+res.Keys+res.Submissions > 0 {
		n.cfg.Logger.Info("expired", "batches", res.Batches, "keys", res.Keys, "submissions", res.Submissions)
	}
	return res, nil
}
