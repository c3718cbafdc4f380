package publish

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Key rules of the reference (v1.17.0 defaults).
const (
	keyLength           = 16
	maxKeysPerPublish   = 30
	maxSameStartKeys    = 3
	minRollingPeriod    = 1
	maxRollingPeriod    = 144 // intervals in a day
	maxTransmissionRisk = 8
	// maxKeyAge: a key whose validity ended before now minus this is too old.
	maxKeyAge = 15 * 24 * time.Hour
	// maxOnsetDays: a key further than this many days from symptom onset is
	// dropped with a warning.
	maxOnsetDays = 14
	// maxOnsetReportDays: a symptom onset further than this many days from
	// now is implausible and replaced by the default.
	maxOnsetReportDays = 28
	// defaultOnsetDaysAgo: the symptom onset assumed when none is plausible.
	defaultOnsetDaysAgo = 4

	intervalSeconds = 600
	day             = 24 * time.Hour
)

// reportTypeCode is the GAEN export ReportType value of a report type.
func reportTypeCode(reportType string) int32 {
	switch reportType {
	case ReportTypeConfirmed:
		return 1 // CONFIRMED_TEST
	case ReportTypeLikely:
		return 2 // CONFIRMED_CLINICAL_DIAGNOSIS
	case ReportTypeUserReport:
		return 3 // SELF_REPORT
	case ReportTypeNegative:
		return 5 // REVOKED
	}
	return 0 // UNKNOWN
}

// intervalNumber is the 10-minute interval containing t.
func intervalNumber(t time.Time) int32 { return int32(t.Unix() / intervalSeconds) }

// dayOf is the UTC day number of an interval.
func dayOf(interval int32) int32 {
	d := interval / maxRollingPeriod
	if interval%maxRollingPeriod < 0 {
		d--
	}
	return d
}

// daysBetween is the number of UTC days from interval a to interval b.
func daysBetween(a, b int32) int32 { return dayOf(b) - dayOf(a) }

// defaultTransmissionRisk fills a transmission risk of 0 from the report
// type as the reference does: confirmed 2, likely 4, negative 6. The
// reference does not fill user-report (its TransmissionRiskSelfReport = 5 is
// never used), so user-report keys keep 0.
func defaultTransmissionRisk(reportType string, risk int32) int32 {
	if risk != 0 {
		return risk
	}
	switch reportType {
	case ReportTypeConfirmed:
		return 2
	case ReportTypeLikely:
		return 4
	case ReportTypeNegative:
		return 6
	}
	return 0
}

// onsetInterval picks the symptom onset as the reference does: the
// request's if it is before the current interval and no earlier than UTC
// midnight 28 days ago, else the certificate's under the same condition,
// else (or if more than 28 days from today) now minus 4 days. The result is
// aligned to UTC midnight: only its day matters.
func onsetInterval(requested int32, certified uint32, now time.Time) int32 {
	current := intervalNumber(now)
	earliest := dayOf(intervalNumber(now.Add(-maxOnsetReportDays*day))) * maxRollingPeriod
	plausible := func(i int64) bool { return i < int64(current) && i >= int64(earliest) }
	var onset int32
	switch {
	case plausible(int64(requested)):
		onset = requested
	case plausible(int64(certified)):
		onset = int32(certified)
	}
	if d := daysBetween(onset, current); onset == 0 || d > maxOnsetReportDays || d < -maxOnsetReportDays {
		onset = intervalNumber(now.Add(-defaultOnsetDaysAgo * day))
	}
	return dayOf(onset) * maxRollingPeriod
}

// keyWindow is the range of start intervals a key may have at upload time.
type keyWindow struct {
	// minEnd: start+period must be at least this (interval of now - 15 days).
	minEnd int32
	// maxStart: start must be at most this (interval of now).
	maxStart int32
}

func newKeyWindow(now time.Time) keyWindow {
	return keyWindow{minEnd: intervalNumber(now.Add(-maxKeyAge)), maxStart: intervalNumber(now)}
}

// checkKey applies the reference's per-key rules and returns the key bytes;
// a key that fails is dropped from the upload.
func (w keyWindow) checkKey(k ExposureKey) ([]byte, error) {
	data, err := DecodeBase64(k.Key)
	if err != nil {
		return nil, err
	}
	if len(data) != keyLength {
		return nil, fmt.Errorf("invalid key length, %d, must be %d", len(data), keyLength)
	}
	if p := k.IntervalCount; p < minRollingPeriod || p > maxRollingPeriod {
		return nil, fmt.Errorf("invalid interval count, %d, must be >= %d && <= %d", p, minRollingPeriod, maxRollingPeriod)
	}
	if end := int64(k.IntervalNumber) + int64(k.IntervalCount); end < int64(w.minEnd) {
		return nil, fmt.Errorf("key expires before minimum window; %d + %d = %d which is too old, must be >= %d",
			k.IntervalNumber, k.IntervalCount, end, w.minEnd)
	}
	if k.IntervalNumber > w.maxStart {
		return nil, fmt.Errorf("interval number %d is in the future, must be <= %d", k.IntervalNumber, w.maxStart)
	}
	if r := k.TransmissionRisk; r < 0 || r > maxTransmissionRisk {
		return nil, fmt.Errorf("invalid transmission risk: %d, must be >= 0 && <= %d", r, maxTransmissionRisk)
	}
	return data, nil
}

// transformed is the outcome of the per-key rules over an upload.
type transformed struct {
	keys     []*fsmpb.Key
	dropped  []string // one message per key that failed the per-key rules
	warnings []string // one message per key dropped for its onset distance
}

// transformKeys applies the per-key rules and the symptom-onset distance to
// every key, in the order given (the reference's order: sorted by key text).
func transformKeys(keys []ExposureKey, reportType string, onset int32, now time.Time) transformed {
	var out transformed
	w := newKeyWindow(now)
	code := reportTypeCode(reportType)
	for i, k := range keys {
		data, err := w.checkKey(k)
		if err != nil {
			out.dropped = append(out.dropped, fmt.Sprintf("key %d cannot be imported: %v", i, err))
			continue
		}
		dso := daysBetween(onset, k.IntervalNumber)
		if abs := max(dso, -dso); abs > maxOnsetDays {
			out.warnings = append(out.warnings,
				fmt.Sprintf("key %d symptom onset is too large, %d > %d - saving without this key", i, abs, maxOnsetDays))
			continue
		}
		out.keys = append(out.keys, &fsmpb.Key{
			KeyData:           data,
			RollingStart:      k.IntervalNumber,
			RollingPeriod:     k.IntervalCount,
			TransmissionRisk:  defaultTransmissionRisk(reportType, int32(k.TransmissionRisk)),
			ReportType:        code,
			HasDaysSinceOnset: true,
			DaysSinceOnset:    dso,
		})
	}
	return out
}

// checkOverlap sorts the kept keys by start then period and refuses the
// upload, as the reference does, if a key starts inside the previous key's
// period without sharing its start, or more than 3 keys share a start.
func checkOverlap(keys []*fsmpb.Key) error {
	slices.SortStableFunc(keys, func(a, b *fsmpb.Key) int {
		return cmp.Or(cmp.Compare(a.GetRollingStart(), b.GetRollingStart()), cmp.Compare(a.GetRollingPeriod(), b.GetRollingPeriod()))
	})
	if len(keys) == 0 {
		return nil
	}
	prevStart := keys[0].GetRollingStart()
	prevEnd := prevStart + keys[0].GetRollingPeriod()
	for _, k := range keys {
		start := k.GetRollingStart()
		if start != prevStart && start < prevEnd {
			return fmt.Errorf("exposure keys have non aligned overlapping intervals. %d overlaps with previous key that is good from %d to %d.",
				start, prevStart, prevEnd)
		}
		prevStart, prevEnd = start, start+k.GetRollingPeriod()
	}
	// Keys sharing a start are adjacent now.
	for i := 0; i < len(keys); {
		j := i
		for j < len(keys) && keys[j].GetRollingStart() == keys[i].GetRollingStart() {
			j++
		}
		if n := j - i; n > maxSameStartKeys {
			return fmt.Errorf("too many overlapping keys for start interval: %d want: <= %d, got: %d",
				keys[i].GetRollingStart(), maxSameStartKeys, n)
		}
		i = j
	}
	return nil
}

// dedupe removes repeated key bytes, keeping the last occurrence, as the
// reference's insert does (it maps keys by their bytes); the state machine
// refuses a command with a key twice.
func dedupe(keys []*fsmpb.Key) []*fsmpb.Key {
	last := make(map[string]int, len(keys))
	for i, k := range keys {
		last[string(k.GetKeyData())] = i
	}
	out := keys[:0:0]
	for i, k := range keys {
		if last[string(k.GetKeyData())] == i {
			out = append(out, k)
		}
	}
	return out
}

// multiError words a list of messages like the reference's go-multierror,
// whose text is the message of a partial_failure or bad_request answer.
func multiError(msgs []string) error {
	if len(msgs) == 1 {
		return fmt.Errorf("1 error occurred:\n\t* %s\n\n", msgs[0])
	}
	return fmt.Errorf("%d errors occurred:\n\t* %s\n\n", len(msgs), strings.Join(msgs, "\n\t* "))
}
