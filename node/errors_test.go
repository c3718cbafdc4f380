package node

import (
	"errors"
	"fmt"
	"testing"

	"github.com/covid-backend/covid-backend/command"
)

// The one classification of write errors: what a client retries, and what
// it must not (a refusal, an internal error), wrapped or not.
func TestRetryable(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"no leader":         {fmt.Errorf("%w: leader unknown", ErrNoLeader), true},
		"upgrade pending":   {&command.ErrUpgradePending{Need: 4, Region: 3}, true},
		"leader refused":    {fmt.Errorf("forward: %w", &LeaderRefused{Leader: "n1", Message: "clock"}), true},
		"clock disagrees":   {ErrClockDisagrees, true},
		"clock unconfirmed": {fmt.Errorf("stamp: %w", ErrClockUnconfirmed), true},
		"disk full":         {&DiskFullError{}, true},
		"refused":           {&command.Error{Code: command.CodeCodeInvalid}, false},
		"internal":          {errors.New("decode result: unexpected EOF"), false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", name, got, tc.want)
		}
	}
}
