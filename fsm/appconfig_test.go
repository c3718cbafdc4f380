package fsm_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func eight(v uint32) []uint32 { return []uint32{v, v, v, v, v, v, v, v} }

// validAppConfig is a configuration every check takes.
func validAppConfig() *fsmpb.AppConfig {
	onset := make([]uint32, 29)
	for i := range onset {
		onset[i] = 1
	}
	return &fsmpb.AppConfig{
		Author: "ops@region.example",
		V1: &fsmpb.ExposureConfigV1{MinimumRiskScore: 11, AttenuationScores: eight(4), AttenuationWeight: 50,
			DaysSinceLastExposureScores: eight(2), DaysSinceLastExposureWeight: 50, DurationScores: eight(5), DurationWeight: 50,
			TransmissionRiskScores: eight(3), TransmissionRiskWeight: 50, DurationAtAttenuationThresholds: []uint32{50, 70}},
		V2: &fsmpb.ExposureConfigV2{InfectiousnessForDaysSinceOnset: onset, InfectiousnessWhenDaysSinceOnsetMissing: 1, ReportTypeWhenMissing: 1,
			InfectiousnessStandardWeightPercent: 100, InfectiousnessHighWeightPercent: 150, ReportTypeConfirmedTestWeightPercent: 100,
			ReportTypeConfirmedClinicalDiagnosisWeightPercent: 100, ReportTypeSelfReportWeightPercent: 80, ReportTypeRecursiveWeightPercent: 0,
			AttenuationDurationThresholds: []uint32{55, 63, 70}, ImmediateDurationWeightPercent: 150, NearDurationWeightPercent: 100,
			MediumDurationWeightPercent: 50, OtherDurationWeightPercent: 0, DaysSinceLastExposureThreshold: 14, MinimumDailyScoreMinutes: 15},
		MinVersions: []*fsmpb.MinAppVersion{{Platform: "ios", Version: "2.14.1"}, {Platform: "android", Version: "2.14"}},
		Texts:       []*fsmpb.AppText{{Language: "nl", Key: "risk.high", Text: "Verhoogd risico"}, {Language: "en", Key: "risk.high", Text: "Increased risk"}},
		Switches:    []*fsmpb.AppSwitch{{Name: "travel", On: true}},
	}
}

func setAppConfig(c *fsmpb.AppConfig) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_APP_CONFIG, SetAppConfig: c}
}

// Each field out of the range the platforms take is refused, naming the
// field, and changes nothing; a good configuration gets the next version,
// its lists sorted, and the history keeps it.
func TestSetAppConfig(t *testing.T) {
	const t0 = int64(20_000*86_400 + 3600)
	f := fsm.New()
	before := freeze(t, f)
	for _, tc := range []struct {
		name, says string
		edit       func(c *fsmpb.AppConfig)
	}{
		{"no v1", "both the GAEN v1 and v2", func(c *fsmpb.AppConfig) { c.V1 = nil }},
		{"minimum risk score", "v1.minimumRiskScore", func(c *fsmpb.AppConfig) { c.V1.MinimumRiskScore = 256 }},
		{"seven attenuation scores", "v1.attenuationScores: 7 values", func(c *fsmpb.AppConfig) { c.V1.AttenuationScores = c.V1.AttenuationScores[:7] }},
		{"a score of 9", "v1.durationScores[3]", func(c *fsmpb.AppConfig) { c.V1.DurationScores[3] = 9 }},
		{"a weight of 101", "v1.transmissionRiskWeight", func(c *fsmpb.AppConfig) { c.V1.TransmissionRiskWeight = 101 }},
		{"thresholds falling", "v1.durationAtAttenuationThresholds: each threshold", func(c *fsmpb.AppConfig) { c.V1.DurationAtAttenuationThresholds = []uint32{70, 50} }},
		{"infectiousness 3", "v2.infectiousnessForDaysSinceOnsetOfSymptoms[0]", func(c *fsmpb.AppConfig) { c.V2.InfectiousnessForDaysSinceOnset[0] = 3 }},
		{"report type 0", "v2.reportTypeWhenMissing", func(c *fsmpb.AppConfig) { c.V2.ReportTypeWhenMissing = 0 }},
		{"a weight of 2.51", "v2.nearDurationWeight", func(c *fsmpb.AppConfig) { c.V2.NearDurationWeightPercent = 251 }},
		{"a threshold of 256 dB", "v2.attenuationDurationThresholds[2]", func(c *fsmpb.AppConfig) { c.V2.AttenuationDurationThresholds[2] = 256 }},
		{"15 days", "v2.daysSinceLastExposureThreshold", func(c *fsmpb.AppConfig) { c.V2.DaysSinceLastExposureThreshold = 15 }},
		{"a day and a minute", "v2.minimumDailyScoreMinutes", func(c *fsmpb.AppConfig) { c.V2.MinimumDailyScoreMinutes = 1441 }},
		{"a platform", "platform \"windows\"", func(c *fsmpb.AppConfig) { c.MinVersions[0].Platform = "windows" }},
		{"a version", "want numbers like", func(c *fsmpb.AppConfig) { c.MinVersions[0].Version = "2.x" }},
		{"ios twice", "ios given twice", func(c *fsmpb.AppConfig) { c.MinVersions[1].Platform = "ios" }},
		{"a language", "is not a language tag", func(c *fsmpb.AppConfig) { c.Texts[0].Language = "Dutch" }},
		{"a text twice", "given twice", func(c *fsmpb.AppConfig) { c.Texts[1].Language = "nl" }},
		{"a long text", "at most 4096 characters", func(c *fsmpb.AppConfig) { c.Texts[0].Text = strings.Repeat("x", 4097) }},
		{"a megabyte of texts", "more than 256 KiB", func(c *fsmpb.AppConfig) {
			for i := range 300 {
				c.Texts = append(c.Texts, &fsmpb.AppText{Language: "de", Key: "k" + itoa(i), Text: strings.Repeat("x", 3500)})
			}
		}},
		{"a switch twice", "a distinct name", func(c *fsmpb.AppConfig) { c.Switches = append(c.Switches, c.Switches[0]) }},
	} {
		c := validAppConfig()
		tc.edit(c)
		r := applyCmd(t, f, at(t0, setAppConfig(c))[0])
		if codeOf(r.Err) != command.CodeInvalidCommand || !strings.Contains(r.Err.Error(), tc.says) {
			t.Fatalf("%s: %v, want it to say %q", tc.name, r.Err, tc.says)
		}
	}
	assertUnchanged(t, f, before)

	first := mustApply(t, f, at(t0, setAppConfig(validAppConfig()))[0]).GetAppConfig()
	if first.GetVersion() != 1 || first.GetTimeUnix() != t0 || first.GetMinVersions()[0].GetPlatform() != "android" || first.GetTexts()[0].GetLanguage() != "en" {
		t.Fatalf("first version: %v", first)
	}
	second := validAppConfig()
	second.V1.MinimumRiskScore = 20
	if got := mustApply(t, f, at(t0+60, setAppConfig(second))[0]).GetAppConfig(); got.GetVersion() != 2 {
		t.Fatalf("second version: %v", got)
	}
	current, ok := f.AppConfig(0)
	if !ok || current.GetVersion() != 2 || current.GetV1().GetMinimumRiskScore() != 20 {
		t.Fatalf("in force: %v", current)
	}
	if old, ok := f.AppConfig(1); !ok || !proto.Equal(old, first) {
		t.Fatalf("version 1 kept: %v", old)
	}
	if h := f.AppConfigHistory(); len(h) != 2 || h[0].GetAuthor() != "ops@region.example" || len(h[0].GetTexts()) != 0 {
		t.Fatalf("history %v", h)
	}
}
