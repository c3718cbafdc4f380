package node

import (
	"errors"

	"github.com/covid-backend/covid-backend/command"
)

// Retryable tells whether a write's error asks the client to try again
// later: no leader took it before the deadline (ErrNoLeader), the region
// is still being upgraded (*command.ErrUpgradePending), the leader cannot
// confirm its clock or refused for another passing reason
// (*LeaderRefused), or a disk is full (*DiskFullError). It is the one
// classification of node errors: every HTTP answer format maps these to
// 503 with Retry-After, a refusal (*command.Error) to the client's error,
// and anything else to 500. A retry carries a new request id unless the
// client's request names one (a publish's submission id), so only what
// the state machine refuses twice alike is safe to send again blindly.
func Retryable(err error) bool {
	var upgrade *command.ErrUpgradePending
	var leader *LeaderRefused
	var disk *DiskFullError
	return errors.Is(err, ErrNoLeader) || errors.As(err, &upgrade) || errors.As(err, &leader) ||
		errors.Is(err, ErrClockDisagrees) || errors.Is(err, ErrClockUnconfirmed) || errors.As(err, &disk)
}
