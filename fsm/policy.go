package fsm

import (
	"cmp"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Defaults of the region policy, in force until an operator (or the first
// leader, from its flags) sets it.
const (
	DefaultRetentionSeconds  = 14 * 24 * 3600
	DefaultSealMinKeys       = 1000
	DefaultSealPaddingJitter = 100
	// DefaultPaddingKeysPerDay is the day budget a new region pads by
	// (padding_keys_per_day): 300 uploads of 14 keys.
	DefaultPaddingKeysPerDay = 4200
	DefaultCodeTTLSeconds    = 24 * 3600
	// DefaultSMSPerHour and DefaultSMSPerNumberPerDay bound the codes the
	// region sends by SMS while its policy names no quota.
	DefaultSMSPerHour         = 1000
	DefaultSMSPerNumberPerDay = 3
	// DefaultCodesPerProviderPerDay bounds the codes one provider issues
	// in 24 hours while the policy names no quota.
	DefaultCodesPerProviderPerDay = 5000
)

// Bounds of the region policy: a typo must not void every key or code.
const (
	minRetentionSeconds = 1
	maxRetentionSeconds = 60 * 24 * 3600
	maxSealKeys         = 100_000
	maxPaddingPerDay    = 1_000_000
	minCodeTTLSeconds   = 60
	maxCodeTTLSeconds   = 30 * 24 * 3600
	maxSMSPerHour       = 1_000_000
	maxSMSPerNumber     = 100
	maxCodesPerProvider = 10_000_000
)

// applySetPolicy changes the region policy: every set field replaces the
// current value, a zero field keeps it.
func applySetPolicy(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	in := cmd.GetSetPolicy()
	dayPadding := cmd.GetVersion() >= command.DayPadding // a field older builds do not know
	switch r, ttl := in.GetRetentionSeconds(), in.GetCodeTtlSeconds(); {
	case r != 0 && (r < minRetentionSeconds || r > maxRetentionSeconds):
		return refuse(command.CodeInvalidCommand, "retention %d s: want %d..%d", r, minRetentionSeconds, maxRetentionSeconds)
	case ttl != 0 && (ttl < minCodeTTLSeconds || ttl > maxCodeTTLSeconds):
		return refuse(command.CodeInvalidCommand, "code lifetime %d s: want %d..%d", ttl, minCodeTTLSeconds, maxCodeTTLSeconds)
	case in.GetSealMinKeys() > maxSealKeys || in.GetSealPaddingJitter() > maxSealKeys:
		return refuse(command.CodeInvalidCommand, "seal padding: at most %d keys", maxSealKeys)
	case in.GetNoPadding() && in.GetSealMinKeys() != 0:
		return refuse(command.CodeInvalidCommand, "no padding and a padding minimum exclude each other")
	case in.GetSmsPerHour() > maxSMSPerHour || in.GetSmsPerNumberPerDay() > maxSMSPerNumber:
		return refuse(command.CodeInvalidCommand, "SMS quotas: at most %d an hour and %d a number a day", maxSMSPerHour, maxSMSPerNumber)
	case in.GetCodesPerProviderPerDay() > maxCodesPerProvider:
		return refuse(command.CodeInvalidCommand, "codes a provider issues a day: at most %d", maxCodesPerProvider)
	case dayPadding && in.GetPaddingKeysPerDay() > maxPaddingPerDay:
		return refuse(command.CodeInvalidCommand, "padding a day: at most %d keys", maxPaddingPerDay)
	case dayPadding && in.GetPaddingKeysPerDay() != 0 && (in.GetNoPadding() || in.GetSealMinKeys() != 0):
		return refuse(command.CodeInvalidCommand, "padding by the day excludes no padding and a padding minimum a batch")
	}
	p := s.effectivePolicy()
	if v := in.GetRetentionSeconds(); v != 0 {
		p.RetentionSeconds = v
	}
	if v := in.GetCodeTtlSeconds(); v != 0 {
		p.CodeTtlSeconds = v
	}
	if v := in.GetSealPaddingJitter(); v != 0 {
		p.SealPaddingJitter = v
	}
	if v := in.GetSmsPerHour(); v != 0 {
		p.SmsPerHour = v
	}
	if v := in.GetSmsPerNumberPerDay(); v != 0 {
		p.SmsPerNumberPerDay = v
	}
	if v := in.GetCodesPerProviderPerDay(); v != 0 {
		p.CodesPerProviderPerDay = v
	}
	switch {
	case in.GetNoPadding():
		p.SealMinKeys, p.NoPadding, p.PaddingKeysPerDay = 0, true, 0
	case in.GetSealMinKeys() != 0:
		p.SealMinKeys, p.NoPadding, p.PaddingKeysPerDay = in.GetSealMinKeys(), false, 0
	case dayPadding && in.GetPaddingKeysPerDay() != 0:
		p.SealMinKeys, p.NoPadding, p.PaddingKeysPerDay = 0, false, in.GetPaddingKeysPerDay()
	}
	s.policy = p
	return &fsmpb.Result{Value: &fsmpb.Result_Policy{Policy: proto.CloneOf(p)}}
}

// effectivePolicy is a copy of the policy in force, defaults filled in.
func (s *state) effectivePolicy() *fsmpb.Policy {
	if s.policy != nil {
		return proto.CloneOf(s.policy)
	}
	return &fsmpb.Policy{RetentionSeconds: DefaultRetentionSeconds, SealMinKeys: DefaultSealMinKeys,
		SealPaddingJitter: DefaultSealPaddingJitter, CodeTtlSeconds: DefaultCodeTTLSeconds}
}

// SMSQuotas are the region's SMS quotas in force: per hour, region-wide,
// and per number in 24 hours (a policy that names none has the defaults).
func SMSQuotas(p *fsmpb.Policy) (perHour, perNumber uint32) {
	return cmp.Or(p.GetSmsPerHour(), DefaultSMSPerHour), cmp.Or(p.GetSmsPerNumberPerDay(), DefaultSMSPerNumberPerDay)
}

// ProviderQuota is the codes one provider may issue in any 24 hours.
func ProviderQuota(p *fsmpb.Policy) uint32 {
	return cmp.Or(p.GetCodesPerProviderPerDay(), DefaultCodesPerProviderPerDay)
}

// Policy returns the region policy in force (defaults until one is set),
// and whether one was set.
func (f *FSM) Policy() (*fsmpb.Policy, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.effectivePolicy(), f.state.policy != nil
}
