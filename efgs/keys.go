package efgs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/covid-backend/covid-backend/efgs/efgspb"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// MaxUploadKeys is how many keys an upload holds at most: the gateway
// answers 413 past 5,000.
const MaxUploadKeys = 5000

// TRLNotUsed is the transmission risk level a country sends when it uses
// none (DP-3T's default): the gateway takes it besides 0..8.
const TRLNotUsed = 0x7FFFFFFF

// Days since onset that the gateway's countries send beyond the GAEN
// range of -14..14: ranges and symptom states encoded by offsets (DP-3T:
// n*100, 2000, 3000, 4000 each ± 14; CWA 22..4000). None says a day GAEN
// can use, so such a key is imported without one.
const gaenOnsetLimit = fsm.MaxDaysSinceOnset

// FromGAEN is one of this region's keys as the gateway wants it uploaded:
// its origin country, the countries it was used in, the GAEN fields as
// they are (the report types number alike), no days since onset as 0
// (absent on the wire) unless the key has one, and TRLNotUsed for a key
// without a transmission risk.
func FromGAEN(k *fsmpb.Key, origin string, visited []string) *efgspb.DiagnosisKey {
	out := &efgspb.DiagnosisKey{KeyData: k.GetKeyData(), RollingStartIntervalNumber: uint32(k.GetRollingStart()),
		RollingPeriod: uint32(k.GetRollingPeriod()), TransmissionRiskLevel: k.GetTransmissionRisk(), VisitedCountries: visited,
		Origin: origin, ReportType: efgspb.ReportType(k.GetReportType())}
	if k.GetTransmissionRisk() == 0 {
		out.TransmissionRiskLevel = TRLNotUsed
	}
	if k.GetHasDaysSinceOnset() {
		out.DaysSinceOnsetOfSymptoms = k.GetDaysSinceOnset()
	}
	return out
}

// ToGAEN is a key the gateway delivered as a GAEN key, or why it is left
// out: its data must be 16 bytes and its rolling period 1..144 (the
// gateway checks both on upload, but a stand-in or a bug may not);
// a transmission risk outside 0..8 (TRLNotUsed among them) becomes none
// (0), as the Czech backend did; a report type outside GAEN's becomes
// CONFIRMED_TEST, as CWA imported; days since onset within -14..14 are
// kept, the offsets countries encode ranges and states with are dropped,
// and 0, which is absent on the wire, reads as none (as CWA read it).
func ToGAEN(k *efgspb.DiagnosisKey) (*fsmpb.Key, error) {
	switch {
	case len(k.GetKeyData()) != fsm.KeyLen:
		return nil, fmt.Errorf("efgs: key data of %d bytes, want %d", len(k.GetKeyData()), fsm.KeyLen)
	case k.GetRollingPeriod() < 1 || k.GetRollingPeriod() > fsm.MaxRollingPeriod:
		return nil, fmt.Errorf("efgs: rolling period %d, want 1..%d", k.GetRollingPeriod(), fsm.MaxRollingPeriod)
	case k.GetRollingStartIntervalNumber() > 1<<31-1:
		return nil, fmt.Errorf("efgs: rolling start %d out of range", k.GetRollingStartIntervalNumber())
	}
	out := &fsmpb.Key{KeyData: k.GetKeyData(), RollingStart: int32(k.GetRollingStartIntervalNumber()),
		RollingPeriod: int32(k.GetRollingPeriod()), TransmissionRisk: k.GetTransmissionRiskLevel(), ReportType: int32(k.GetReportType())}
	if out.TransmissionRisk < 0 || out.TransmissionRisk > fsm.MaxTransmissionRisk {
		out.TransmissionRisk = 0
	}
	if out.ReportType < int32(efgspb.ReportType_CONFIRMED_TEST) || out.ReportType > fsm.MaxReportType {
		out.ReportType = int32(efgspb.ReportType_CONFIRMED_TEST)
	}
	if d := k.GetDaysSinceOnsetOfSymptoms(); d >= -gaenOnsetLimit && d <= gaenOnsetLimit && d != 0 {
		out.HasDaysSinceOnset, out.DaysSinceOnset = true, d
	}
	return out, nil
}

// Tag is an upload's batchTag: the hex SHA-256 of its body, so that the
// same upload sent again has the same tag (the gateway answers 409) and a
// new leader that resumes an upload cannot send it twice.
func Tag(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// MultiStatus is the gateway's 207 answer to an upload: the indices of
// the keys it could insert (201), that it holds already (409) and that
// failed (500). Nothing of the upload was stored, the 201 keys neither.
type MultiStatus struct {
	Inserted []int `json:"201"`
	Exists   []int `json:"409"`
	Failed   []int `json:"500"`
}

// ParseMultiStatus reads a 207 answer for an upload of n keys; an index
// outside the upload is an error.
func ParseMultiStatus(body []byte, n int) (MultiStatus, error) {
	var m MultiStatus
	if err := json.Unmarshal(body, &m); err != nil {
		return MultiStatus{}, fmt.Errorf("efgs: a 207 answer that is not its JSON: %w", err)
	}
	for _, list := range [][]int{m.Inserted, m.Exists, m.Failed} {
		for _, i := range list {
			if i < 0 || i >= n {
				return MultiStatus{}, fmt.Errorf("efgs: a 207 answer names key %d of an upload of %d", i, n)
			}
		}
	}
	return m, nil
}

// Retry is what goes up again after a 207, under a new tag (a new body):
// the keys the gateway could insert and those that failed, in upload
// order; those it holds already stay out.
func (m MultiStatus) Retry(keys []*efgspb.DiagnosisKey) []*efgspb.DiagnosisKey {
	exists := make(map[int]bool, len(m.Exists))
	for _, i := range m.Exists {
		exists[i] = true
	}
	var out []*efgspb.DiagnosisKey
	for i, k := range keys {
		if !exists[i] {
			out = append(out, k)
		}
	}
	return out
}
