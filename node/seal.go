package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// paddingJitter is the most random keys added above the minimum, so that
// padded batches do not all have the same size.
const paddingJitter = 100

// sealLoop seals a batch every seal interval while this node leads.
func sealLoop(ctx context.Context, n *Node) error {
	return every(ctx, n.cfg.SealInterval, func() {
		if _, err := n.SealNow(ctx); err != nil && !errors.Is(err, ErrNothingToSeal) {
			n.cfg.Logger.Warn("seal failed", "err", err)
		}
	})
}

// every runs f at each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f()
		}
	}
}

// ErrNothingToSeal means no accepted key has expired since the last batch.
var ErrNothingToSeal = errors.New("nothing to seal")

// SealNow seals the next batch through raft: the leader draws the padding
// keys (randomness stays out of Apply) and the state machine decides, the
// same on every node, which keys the batch holds.
func (n *Node) SealNow(ctx context.Context) (fsm.SealResult, error) {
	jitter, err := rand.Int(rand.Reader, big.NewInt(paddingJitter+1))
	if err != nil {
		return fsm.SealResult{}, err
	}
	target := n.cfg.SealMinKeys + int(jitter.Int64())
	if n.cfg.SealMinKeys == 0 {
		target = 0
	}
	_, expired := n.fsm.Pending(int32(time.Now().Unix() / 600))
	padding := make([][]byte, max(0, target-expired))
	for i := range padding {
		padding[i] = make([]byte, fsm.KeyLen)
		if _, err := rand.Read(padding[i]); err != nil {
			return fsm.SealResult{}, err
		}
	}
	seq := n.fsm.LastBatch() + 1
	val, err := n.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL,
		Seal: &fsmpb.Seal{Seq: seq, TargetKeys: uint32(target), Padding: padding, Origin: n.cfg.Region}})
	var refused *fsm.Error
	if errors.As(err, &refused) && refused.Code == fsm.CodeNothingToSeal {
		return fsm.SealResult{}, ErrNothingToSeal
	}
	if err != nil {
		return fsm.SealResult{}, fmt.Errorf("seal batch %d: %w", seq, err)
	}
	res, _ := val.(fsm.SealResult)
	n.cfg.Logger.Info("sealed batch", "seq", res.Seq, "keys", res.Keys, "padding", res.Padding, "revised", res.Revised)
	return res, nil
}
