package efgs_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Keys from the gateway become GAEN keys as the fact sheet says: a
// transmission risk outside 0..8 none, a report type GAEN lacks
// CONFIRMED_TEST, days since onset kept within -14..14 and dropped beyond
// (the offsets countries encode ranges and states with); a key GAEN
// cannot hold is refused.
func TestToGAEN(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 16)
	base := func(edit func(k *efgspb.DiagnosisKey)) *efgspb.DiagnosisKey {
		k := &efgspb.DiagnosisKey{KeyData: data, RollingStartIntervalNumber: 2_800_000, RollingPeriod: 144, TransmissionRiskLevel: 3,
			Origin: "DE", ReportType: efgspb.ReportType_CONFIRMED_TEST, DaysSinceOnsetOfSymptoms: -2}
		edit(k)
		return k
	}
	for _, tc := range []struct {
		name string
		in   *efgspb.DiagnosisKey
		want *fsmpb.Key
	}{
		{"as it is", base(func(*efgspb.DiagnosisKey) {}),
			&fsmpb.Key{KeyData: data, RollingStart: 2_800_000, RollingPeriod: 144, TransmissionRisk: 3, ReportType: 1, HasDaysSinceOnset: true, DaysSinceOnset: -2}},
		{"TRL not used", base(func(k *efgspb.DiagnosisKey) { k.TransmissionRiskLevel = efgs.TRLNotUsed }),
			&fsmpb.Key{KeyData: data, RollingStart: 2_800_000, RollingPeriod: 144, ReportType: 1, HasDaysSinceOnset: true, DaysSinceOnset: -2}},
		{"an onset range (CWA)", base(func(k *efgspb.DiagnosisKey) { k.DaysSinceOnsetOfSymptoms = 1986 }),
			&fsmpb.Key{KeyData: data, RollingStart: 2_800_000, RollingPeriod: 144, TransmissionRisk: 3, ReportType: 1}},
		{"asymptomatic (DP-3T 3000-2)", base(func(k *efgspb.DiagnosisKey) { k.DaysSinceOnsetOfSymptoms = 2998 }),
			&fsmpb.Key{KeyData: data, RollingStart: 2_800_000, RollingPeriod: 144, TransmissionRisk: 3, ReportType: 1}},
		{"no report type", base(func(k *efgspb.DiagnosisKey) { k.ReportType = efgspb.ReportType_UNKNOWN }),
			&fsmpb.Key{KeyData: data, RollingStart: 2_800_000, RollingPeriod: 144, TransmissionRisk: 3, ReportType: 1, HasDaysSinceOnset: true, DaysSinceOnset: -2}},
		{"revoked", base(func(k *efgspb.DiagnosisKey) { k.ReportType = efgspb.ReportType_REVOKED }),
			&fsmpb.Key{KeyData: data, RollingStart: 2_800_000, RollingPeriod: 144, TransmissionRisk: 3, ReportType: 5, HasDaysSinceOnset: true, DaysSinceOnset: -2}},
	} {
		got, err := efgs.ToGAEN(tc.in)
		if err != nil || !proto.Equal(got, tc.want) {
			t.Errorf("%s: %v (%v), want %v", tc.name, got, err, tc.want)
		}
	}
	for name, in := range map[string]*efgspb.DiagnosisKey{
		"15 bytes of key":    base(func(k *efgspb.DiagnosisKey) { k.KeyData = data[:15] }),
		"rolling period 0":   base(func(k *efgspb.DiagnosisKey) { k.RollingPeriod = 0 }),
		"rolling period 145": base(func(k *efgspb.DiagnosisKey) { k.RollingPeriod = 145 }),
	} {
		if _, err := efgs.ToGAEN(in); err == nil {
			t.Errorf("%s: taken", name)
		}
	}
}

// A key of this region goes up with its origin and visited countries and
// comes back as it was.
func TestFromGAENRoundTrip(t *testing.T) {
	for _, k := range []*fsmpb.Key{
		{KeyData: bytes.Repeat([]byte{1}, 16), RollingStart: 2_800_000, RollingPeriod: 144, TransmissionRisk: 4, ReportType: 1, HasDaysSinceOnset: true, DaysSinceOnset: 3},
		{KeyData: bytes.Repeat([]byte{2}, 16), RollingStart: 2_800_144, RollingPeriod: 100, ReportType: 2},
	} {
		up := efgs.FromGAEN(k, "NL", []string{"NL", "BE"})
		if up.GetOrigin() != "NL" || len(up.GetVisitedCountries()) != 2 || k.GetTransmissionRisk() == 0 && up.GetTransmissionRiskLevel() != efgs.TRLNotUsed {
			t.Errorf("up: %v", up)
		}
		back, err := efgs.ToGAEN(up)
		if err != nil || !proto.Equal(back, k) {
			t.Errorf("%v came back as %v (%v)", k, back, err)
		}
	}
}

// A 207 answer: what goes up again (the keys the gateway could insert
// and those that failed, not those it holds), and an index outside the
// upload refused; the tag of an upload is the same for the same body.
func TestMultiStatusAndTag(t *testing.T) {
	keys := someKeys(t, 5)
	m, err := efgs.ParseMultiStatus([]byte(`{"201":[0,3],"409":[1,4],"500":[2]}`), len(keys))
	if err != nil {
		t.Fatal(err)
	}
	if again := m.Retry(keys); len(again) != 3 || again[0] != keys[0] || again[1] != keys[2] || again[2] != keys[3] {
		t.Errorf("retry %d keys, want keys 0, 2 and 3", len(again))
	}
	if _, err := efgs.ParseMultiStatus([]byte(`{"201":[0,5]}`), len(keys)); err == nil {
		t.Error("an index outside the upload taken")
	}
	if _, err := efgs.ParseMultiStatus([]byte(`{"message":"oops"`), len(keys)); err == nil {
		t.Error("a body that is not JSON taken")
	}
	body, _ := proto.Marshal(&efgspb.DiagnosisKeyBatch{Keys: keys})
	other, _ := proto.Marshal(&efgspb.DiagnosisKeyBatch{Keys: keys[1:]})
	if efgs.Tag(body) != efgs.Tag(body) || efgs.Tag(body) == efgs.Tag(other) || len(efgs.Tag(body)) != 64 {
		t.Error("the tag is not the body's digest")
	}
}
