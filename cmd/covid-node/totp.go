package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/node"
)

// sealTOTPJob is a leader job that seals the second-factor secrets kept in
// clear (by the previous release) under the region's code key, once every
// member runs a build that opens them, and looks again every minute while
// it leads (a member of the previous release may write one mid-upgrade).
func sealTOTPJob(codeKey []byte, logger *slog.Logger) node.LeaderJob {
	return func(ctx context.Context, n *node.Node) error {
		for {
			if n.RegionVersion() >= command.SealedTOTPSecrets {
				if err := sealTOTPSecrets(ctx, n, n.FSM(), codeKey, logger); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Minute):
			}
		}
	}
}

// sealTOTPSecrets rewrites each account whose secret is in clear with the
// secret sealed; nothing else of the account changes (PUT_USER keeps its
// counters and sessions while the password stays).
func sealTOTPSecrets(ctx context.Context, a command.Applier, state *fsm.FSM, codeKey []byte, logger *slog.Logger) error {
	for _, u := range state.Users("*") {
		if len(u.GetTotpSecret()) == 0 || account.TOTPSealed(u.GetTotpSecret()) {
			continue
		}
		u.TotpSecret = account.SealTOTP(codeKey, u.GetEmail(), string(u.GetTotpSecret()))
		u.LoginClients, u.Failures, u.LockedUntilUnix = nil, 0, 0 // the state machine keeps its own
		if _, err := command.PutUser(ctx, a, u); err != nil {
			return fmt.Errorf("seal the second factor of %s: %w", u.GetEmail(), err)
		}
		logger.Info("sealed an account's second-factor secret kept in clear", "account", u.GetEmail())
	}
	return nil
}
