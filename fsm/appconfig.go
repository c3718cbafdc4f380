package fsm

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Bounds of the app configuration: the versions kept, the texts (a
// bundle apps download with every configuration), the switches.
const (
	maxAppConfigs    = 100
	maxAppTexts      = 2000
	maxAppTextRunes  = 4096
	maxAppTextsBytes = 256 << 10
	maxAppSwitches   = 64
	maxAuthorRunes   = 256
)

var (
	languageTag = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
	appName     = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	appVersion  = regexp.MustCompile(`^[0-9]{1,6}(\.[0-9]{1,6}){0,2}$`)
)

// applySetAppConfig keeps a new version of the app configuration (from
// version 7): checked whole (ValidateAppConfig), numbered after the last,
// stamped with the command's time; its lists sorted, so that equal
// configurations give equal bytes. The oldest versions past
// maxAppConfigs are dropped.
func applySetAppConfig(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	c := proto.CloneOf(cmd.GetSetAppConfig())
	if err := ValidateAppConfig(c); err != nil {
		return refuse(command.CodeInvalidCommand, "app configuration: %v", err)
	}
	c.Version, c.TimeUnix = 1, cmd.GetTimeUnix()
	if n := len(s.appConfigs); n > 0 {
		c.Version = s.appConfigs[n-1].GetVersion() + 1
	}
	c.ServiceStatus, c.WindDownUnix = s.serviceStatus(c.GetTimeUnix()), s.service.GetWindDownUnix()
	c.Signatures = nil // a new version's zip is signed anew (SIGN_FILES)
	c.Signers = cloneSigners(c.GetSigners(), true)
	if cmd.GetVersion() < command.ReplicatedSignatures {
		c.Signers = nil // version 7 knows none
	}
	if len(c.Signers) > maxAppConfigSigners {
		return refuse(command.CodeInvalidCommand, "app configuration: %d signers, at most %d", len(c.Signers), maxAppConfigSigners)
	}
	slices.SortFunc(c.MinVersions, func(a, b *fsmpb.MinAppVersion) int { return cmp.Compare(a.GetPlatform(), b.GetPlatform()) })
	slices.SortFunc(c.Texts, func(a, b *fsmpb.AppText) int {
		return cmp.Or(cmp.Compare(a.GetLanguage(), b.GetLanguage()), cmp.Compare(a.GetKey(), b.GetKey()))
	})
	slices.SortFunc(c.Switches, func(a, b *fsmpb.AppSwitch) int { return cmp.Compare(a.GetName(), b.GetName()) })
	s.keepAppConfig(c)
	return &fsmpb.Result{Value: &fsmpb.Result_AppConfig{AppConfig: proto.CloneOf(c)}}
}

// keepAppConfig appends a version, dropping the oldest past
// maxAppConfigs.
func (s *state) keepAppConfig(c *fsmpb.AppConfig) {
	s.appConfigs = append(s.appConfigs, c)
	if len(s.appConfigs) > maxAppConfigs {
		s.appConfigs = slices.Clone(s.appConfigs[len(s.appConfigs)-maxAppConfigs:])
	}
}

// ValidateAppConfig checks a configuration against the ranges the GAEN
// platforms take and the bounds of this region, and tells the first
// field that is wrong.
func ValidateAppConfig(c *fsmpb.AppConfig) error {
	if c.GetV1() == nil || c.GetV2() == nil {
		return fmt.Errorf("both the GAEN v1 and v2 configurations are needed (apps of both kinds run)")
	}
	if utf8.RuneCountInString(c.GetAuthor()) > maxAuthorRunes {
		return fmt.Errorf("author: at most %d characters", maxAuthorRunes)
	}
	for _, check := range []func() error{func() error { return validateV1(c.GetV1()) }, func() error { return validateV2(c.GetV2()) },
		func() error { return validateVersions(c.GetMinVersions()) }, func() error { return validateTexts(c.GetTexts()) },
		func() error { return validateSwitches(c.GetSwitches()) }} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// inRange checks one value.
func inRange(field string, v, lo, hi uint32) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s: %d, want %d..%d", field, v, lo, hi)
	}
	return nil
}

// list checks a list's length and each value's range.
func list(field string, vs []uint32, n int, lo, hi uint32) error {
	if len(vs) != n {
		return fmt.Errorf("%s: %d values, want %d", field, len(vs), n)
	}
	for i, v := range vs {
		if err := inRange(fmt.Sprintf("%s[%d]", field, i), v, lo, hi); err != nil {
			return err
		}
	}
	return nil
}

// rising checks thresholds in dB: n values of 0..255, each above the one
// before.
func rising(field string, vs []uint32, n int) error {
	if err := list(field, vs, n, 0, 255); err != nil {
		return err
	}
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] {
			return fmt.Errorf("%s: each threshold above the one before", field)
		}
	}
	return nil
}

func validateV1(v *fsmpb.ExposureConfigV1) error {
	checks := []error{
		inRange("v1.minimumRiskScore", v.GetMinimumRiskScore(), 0, 255),
		list("v1.attenuationScores", v.GetAttenuationScores(), 8, 0, 8),
		list("v1.daysSinceLastExposureScores", v.GetDaysSinceLastExposureScores(), 8, 0, 8),
		list("v1.durationScores", v.GetDurationScores(), 8, 0, 8),
		list("v1.transmissionRiskScores", v.GetTransmissionRiskScores(), 8, 0, 8),
		inRange("v1.attenuationWeight", v.GetAttenuationWeight(), 0, 100),
		inRange("v1.daysSinceLastExposureWeight", v.GetDaysSinceLastExposureWeight(), 0, 100),
		inRange("v1.durationWeight", v.GetDurationWeight(), 0, 100),
		inRange("v1.transmissionRiskWeight", v.GetTransmissionRiskWeight(), 0, 100),
		rising("v1.durationAtAttenuationThresholds", v.GetDurationAtAttenuationThresholds(), 2),
	}
	return firstError(checks)
}

func validateV2(v *fsmpb.ExposureConfigV2) error {
	checks := []error{
		list("v2.infectiousnessForDaysSinceOnsetOfSymptoms", v.GetInfectiousnessForDaysSinceOnset(), 29, 0, 2),
		inRange("v2.infectiousnessWhenDaysSinceOnsetMissing", v.GetInfectiousnessWhenDaysSinceOnsetMissing(), 0, 2),
		inRange("v2.reportTypeWhenMissing", v.GetReportTypeWhenMissing(), 1, 4),
		rising("v2.attenuationDurationThresholds", v.GetAttenuationDurationThresholds(), 3),
		inRange("v2.daysSinceLastExposureThreshold", v.GetDaysSinceLastExposureThreshold(), 0, 14),
		inRange("v2.minimumDailyScoreMinutes", v.GetMinimumDailyScoreMinutes(), 0, 1440),
	}
	for _, w := range []struct {
		name    string
		percent uint32
	}{
		{"infectiousnessStandardWeight", v.GetInfectiousnessStandardWeightPercent()}, {"infectiousnessHighWeight", v.GetInfectiousnessHighWeightPercent()},
		{"reportTypeConfirmedTestWeight", v.GetReportTypeConfirmedTestWeightPercent()},
		{"reportTypeConfirmedClinicalDiagnosisWeight", v.GetReportTypeConfirmedClinicalDiagnosisWeightPercent()},
		{"reportTypeSelfReportWeight", v.GetReportTypeSelfReportWeightPercent()}, {"reportTypeRecursiveWeight", v.GetReportTypeRecursiveWeightPercent()},
		{"immediateDurationWeight", v.GetImmediateDurationWeightPercent()}, {"nearDurationWeight", v.GetNearDurationWeightPercent()},
		{"mediumDurationWeight", v.GetMediumDurationWeightPercent()}, {"otherDurationWeight", v.GetOtherDurationWeightPercent()},
	} {
		if w.percent > 250 {
			checks = append(checks, fmt.Errorf("v2.%s: %d %%, want 0..250 %% (0.0 to 2.5)", w.name, w.percent))
		}
	}
	return firstError(checks)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func validateVersions(vs []*fsmpb.MinAppVersion) error {
	seen := map[string]bool{}
	for _, v := range vs {
		switch p := v.GetPlatform(); {
		case p != "ios" && p != "android":
			return fmt.Errorf("minimum version: platform %q, want ios or android", p)
		case seen[p]:
			return fmt.Errorf("minimum version: %s given twice", p)
		case !appVersion.MatchString(v.GetVersion()):
			return fmt.Errorf("minimum version of %s: %q, want numbers like 2.14.1", p, v.GetVersion())
		}
		seen[v.GetPlatform()] = true
	}
	return nil
}

func validateTexts(ts []*fsmpb.AppText) error {
	if len(ts) > maxAppTexts {
		return fmt.Errorf("texts: %d, at most %d", len(ts), maxAppTexts)
	}
	seen, size := map[[2]string]bool{}, 0
	for _, t := range ts {
		id := [2]string{t.GetLanguage(), t.GetKey()}
		switch {
		case !languageTag.MatchString(t.GetLanguage()):
			return fmt.Errorf("text %q: language %q is not a language tag like nl or de-AT", t.GetKey(), t.GetLanguage())
		case !appName.MatchString(t.GetKey()):
			return fmt.Errorf("text key %q: 1 to 64 of a-z, 0-9, _ . -", t.GetKey())
		case seen[id]:
			return fmt.Errorf("text %s/%s given twice", t.GetLanguage(), t.GetKey())
		case !utf8.ValidString(t.GetText()) || utf8.RuneCountInString(t.GetText()) > maxAppTextRunes:
			return fmt.Errorf("text %s/%s: at most %d characters of UTF-8", t.GetLanguage(), t.GetKey(), maxAppTextRunes)
		}
		seen[id] = true
		if size += len(t.GetText()); size > maxAppTextsBytes {
			return fmt.Errorf("texts: more than %d KiB in all", maxAppTextsBytes>>10)
		}
	}
	return nil
}

func validateSwitches(ss []*fsmpb.AppSwitch) error {
	if len(ss) > maxAppSwitches {
		return fmt.Errorf("switches: %d, at most %d", len(ss), maxAppSwitches)
	}
	seen := map[string]bool{}
	for _, sw := range ss {
		if !appName.MatchString(sw.GetName()) || seen[sw.GetName()] {
			return fmt.Errorf("switch %q: a distinct name of 1 to 64 of a-z, 0-9, _ . -", sw.GetName())
		}
		seen[sw.GetName()] = true
	}
	return nil
}

// AppConfig returns a copy of a version of the app configuration (0: the
// one in force), and false when there is none.
func (f *FSM) AppConfig(version uint32) (*fsmpb.AppConfig, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	cs := f.state.appConfigs
	if len(cs) == 0 {
		return nil, false
	}
	if version == 0 {
		return proto.CloneOf(cs[len(cs)-1]), true
	}
	i := slices.IndexFunc(cs, func(c *fsmpb.AppConfig) bool { return c.GetVersion() == version })
	if i < 0 {
		return nil, false
	}
	return proto.CloneOf(cs[i]), true
}

// AppConfigVersion is the newest version's number (0: none), cheap to ask
// often.
func (f *FSM) AppConfigVersion() uint32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if n := len(f.state.appConfigs); n > 0 {
		return f.state.appConfigs[n-1].GetVersion()
	}
	return 0
}

// AppConfigHistory returns the kept versions, oldest first, without their
// texts (shared read-only messages stripped to their heads).
func (f *FSM) AppConfigHistory() []*fsmpb.AppConfig {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*fsmpb.AppConfig, len(f.state.appConfigs))
	for i, c := range f.state.appConfigs {
		out[i] = &fsmpb.AppConfig{Version: c.GetVersion(), TimeUnix: c.GetTimeUnix(), Author: c.GetAuthor()}
	}
	return out
}

func captureAppConfigs(s *state, hdr *fsmpb.SnapshotHeader) persist {
	list := slices.Clone(s.appConfigs)
	hdr.AppConfigs = uint64(len(list))
	return func(put func(proto.Message) error) error { return putAll(put, list) }
}

func restoreAppConfigs(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	for range hdr.GetAppConfigs() {
		c := &fsmpb.AppConfig{}
		if err := r.get(c); err != nil {
			return fmt.Errorf("read app configuration: %w", err)
		}
		s.appConfigs = append(s.appConfigs, c)
	}
	return nil
}
