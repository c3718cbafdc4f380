package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/padding"
)

// sealLoop seals a batch every seal interval while this node leads.
func sealLoop(ctx context.Context, n *Node) error {
	return every(ctx, n.cfg.SealInterval, func() {
		if _, err := n.scheduledSeal(ctx); err != nil && !errors.Is(err, ErrNothingToSeal) {
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

// sealSignersVersion is the command version from which a seal records the
// export keys that sign its files.
const sealSignersVersion = 2

// ErrNothingToSeal means no accepted key has expired since the last batch.
var ErrNothingToSeal = errors.New("nothing to seal")

// paddingPicks draws, for each padding key, which real key it copies the
// metadata of; none while the region applies a version before picks.
func paddingPicks(regionVersion uint32, n int) ([]uint32, error) {
	if regionVersion < 3 || n == 0 {
		return nil, nil
	}
	raw := make([]byte, 4*n)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	picks := make([]uint32, n)
	for i := range picks {
		picks[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	return picks, nil
}

// sealAttempts is how often sealNext numbers a seal again after another
// seal took its number first.
const sealAttempts = 3

// sealNext proposes sl as the batch after the last one this node knows of.
// The number comes from this node's state, which on a follower lags the
// leader's, and a scheduled seal may take it a moment before: so it first
// catches up with what the leader has applied, and numbers the seal again
// when the state machine answers stale_seal (an operator's "seal now"
// through a follower answered 400 in the fault soak).
func (n *Node) sealNext(ctx context.Context, sl *fsmpb.Seal) (*fsmpb.SealResult, error) {
	for attempt := 1; ; attempt++ {
		// Best effort: a seal numbered from a state that lags is refused
		// (stale_seal) and numbered again; no leader fails the seal itself.
		_ = n.CatchUp(ctx)
		sl.Seq = n.fsm.LastBatch() + 1
		res, err := command.Seal(ctx, n, sl)
		var refused *command.Error
		switch {
		case errors.As(err, &refused) && refused.Code == command.CodeNothingToSeal:
			return nil, ErrNothingToSeal
		case errors.As(err, &refused) && refused.Code == command.CodeStaleSeal && attempt < sealAttempts:
			continue
		case err != nil:
			return nil, fmt.Errorf("seal batch %d: %w", sl.Seq, err)
		}
		return res, nil
	}
}

// SealNow seals the next batch through raft: the leader draws the padding
// keys (randomness stays out of Apply), as many as the region policy asks,
// and the state machine decides, the same on every node, which keys the
// batch holds. It publishes every key that is due (an operator's "seal
// now"); the seal loop's seals, when the region pads by the day, are of a
// fixed size instead (scheduledSeal).
func (n *Node) SealNow(ctx context.Context) (*fsmpb.SealResult, error) {
	return n.seal(ctx, false)
}

// scheduledSeal is the seal loop's: of a fixed size, even with no key due,
// when the region pads by the day.
func (n *Node) scheduledSeal(ctx context.Context) (*fsmpb.SealResult, error) {
	return n.seal(ctx, true)
}

func (n *Node) seal(ctx context.Context, scheduled bool) (*fsmpb.SealResult, error) {
	// A batch sealed below version 2 records no export keys, and its files
	// would be signed with whatever keys a node has when it builds them:
	// the same name could later carry other bytes.
	if v := n.RegionVersion(); v < sealSignersVersion {
		return nil, &command.ErrUpgradePending{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL, Need: sealSignersVersion, Region: v}
	}
	target, fixed, err := n.sealTarget(scheduled)
	if err != nil {
		return nil, err
	}
	// As many random keys as the batch could need: the state machine takes
	// what the keys it seals leave short of the target (this node's copy of
	// the state may lag, so it cannot tell how many that is); for a batch
	// of a fixed size, what the waiting keys leave short, with a margin.
	random := target
	if fixed {
		random = min(target, padding.RandomKeys(target, n.fsm.Backlog(n.cfg.Now().Unix())))
	}
	pad := make([][]byte, random)
	for i := range pad {
		pad[i] = make([]byte, fsm.KeyLen)
		if _, err := rand.Read(pad[i]); err != nil {
			return nil, err
		}
	}
	picks, err := paddingPicks(n.RegionVersion(), random)
	if err != nil {
		return nil, err
	}
	signers, err := n.sealSigners()
	if err != nil {
		return nil, err
	}
	res, err := n.sealNext(ctx, &fsmpb.Seal{TargetKeys: uint32(target), Padding: pad, Origin: n.cfg.Region,
		Signers: signers, PaddingPicks: picks, FixedSize: fixed})
	if err != nil {
		return nil, err
	}
	// How many keys were real is what padding hides: counts only at debug.
	n.cfg.Logger.Info("sealed batch", "seq", res.GetSeq())
	n.cfg.Logger.Debug("sealed batch counts", "seq", res.GetSeq(), "keys", res.GetKeys(), "padding", res.GetPadding(), "revised", res.GetRevised())
	return res, nil
}

// sealTarget is the size the next batch is padded to, and whether it is
// fixed (padding by the day, from the seal loop): the region policy's
// minimum a batch with its jitter, or a draw from the day budget's bucket
// for the keys due (package padding).
func (n *Node) sealTarget(scheduled bool) (target int, fixed bool, err error) {
	policy, _ := n.Policy()
	minKeys := policy.GetSealMinKeys()
	if perDay := policy.GetPaddingKeysPerDay(); perDay > 0 {
		if n.RegionVersion() >= command.DayPadding {
			plan := padding.Plan{PerDay: int(perDay), Interval: n.cfg.SealInterval}
			target, err = plan.Next(n.fsm.Backlog(n.cfg.Now().Unix()), !scheduled)
			return target, scheduled, err
		}
		minKeys = fsm.DefaultSealMinKeys // until the whole region applies version 9
	}
	if minKeys == 0 {
		return 0, false, nil
	}
	jitter, err := rand.Int(rand.Reader, big.NewInt(int64(policy.GetSealPaddingJitter())+1))
	if err != nil {
		return 0, false, err
	}
	return int(minKeys) + int(jitter.Int64()), false, nil
}

// sealSigners are the export keys that sign the next batch: a key kept in
// an HSM (a signer with a public key, whose signatures the region
// replicates) only once every member applies SIGN_FILES; before that it
// would be recorded without its public key and no node could sign its
// files, so it is left out, and a region of such keys alone waits.
func (n *Node) sealSigners() ([]*fsmpb.ExportSigner, error) {
	if n.RegionVersion() >= command.ReplicatedSignatures {
		return n.cfg.ExportSigners, nil
	}
	out := slices.DeleteFunc(slices.Clone(n.cfg.ExportSigners), func(sg *fsmpb.ExportSigner) bool { return len(sg.GetPublicKey()) > 0 })
	if len(out) == 0 && len(n.cfg.ExportSigners) > 0 {
		return nil, &command.ErrUpgradePending{Type: fsmpb.CommandType_COMMAND_TYPE_SIGN_FILES, Need: command.ReplicatedSignatures, Region: n.RegionVersion()}
	}
	return out, nil
}
