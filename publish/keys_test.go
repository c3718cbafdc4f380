package publish

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// today is the UTC day number of the uploader's clock.
func (u *uploader) today() int32 { return intervalNumber(u.now) / 144 }

// midnight is the first interval of the day daysAgo days before today.
func (u *uploader) midnight(daysAgo int32) int32 { return (u.today() - daysAgo) * 144 }

func keyAt(t *testing.T, start, period int32, risk int) ExposureKey {
	return ExposureKey{Key: randomKey(t), IntervalNumber: start, IntervalCount: period, TransmissionRisk: risk}
}

// TestPerKeyRules uploads one good key and one key that breaks a rule: the
// bad key is dropped, the good one kept, and the answer is a partial failure.
func TestPerKeyRules(t *testing.T) {
	u := newUploader(t)
	current := intervalNumber(u.now)
	minEnd := intervalNumber(u.now.Add(-15 * 24 * time.Hour))
	key15 := base64.StdEncoding.EncodeToString(make([]byte, 15))

	cases := []struct {
		name string
		bad  ExposureKey
		why  string
	}{
		{name: "too old", bad: keyAt(t, minEnd-1-144, 144, 0), why: "too old"},
		{name: "future", bad: keyAt(t, current+1, 1, 0), why: "in the future"},
		{name: "period 0", bad: keyAt(t, u.midnight(3), 0, 0), why: "invalid interval count"},
		{name: "period 145", bad: keyAt(t, u.midnight(3), 145, 0), why: "invalid interval count"},
		{name: "risk -1", bad: keyAt(t, u.midnight(3), 144, -1), why: "invalid transmission risk"},
		{name: "risk 9", bad: keyAt(t, u.midnight(3), 144, 9), why: "invalid transmission risk"},
		{name: "15-byte key", bad: ExposureKey{Key: key15, IntervalNumber: u.midnight(3), IntervalCount: 144}, why: "invalid key length"},
		{name: "not base64", bad: ExposureKey{Key: "!!!!", IntervalNumber: u.midnight(3), IntervalCount: 144}, why: "base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			good := u.key(1, 5)
			v, err := Validate(u.request([]ExposureKey{good, tc.bad}, ReportTypeConfirmed, 0), u.auth, u.now)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if v.Dropped != 1 || len(v.Keys) != 1 || v.Keys[0].GetRollingStart() != good.IntervalNumber {
				t.Fatalf("dropped %d, kept %v", v.Dropped, v.Keys)
			}
			pf := v.PartialFailure()
			if pf == nil || pf.Status != http.StatusOK || pf.Code != CodePartialFailure || !strings.Contains(pf.Message, tc.why) {
				t.Errorf("partial failure = %+v, want 200 partial_failure saying %q", pf, tc.why)
			}
		})
	}
}

// TestKeyWindowBoundaries keeps keys exactly at the edges of the window.
func TestKeyWindowBoundaries(t *testing.T) {
	u := newUploader(t)
	current := intervalNumber(u.now)
	minEnd := intervalNumber(u.now.Add(-15 * 24 * time.Hour))
	keys := []ExposureKey{
		keyAt(t, minEnd-144, 144, 0), // start + period == minimum: still valid then
		keyAt(t, current, 1, 0),      // starts now
	}
	v, err := Validate(u.request(keys, ReportTypeConfirmed, 0), u.auth, u.now)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if v.Dropped != 0 || len(v.Keys) != 2 {
		t.Errorf("dropped %v, kept %d", v.DropErrors, len(v.Keys))
	}
}

// TestDropMessagesUseSortedIndices: as in the reference, key indices in
// messages count keys sorted by their base64 text.
func TestDropMessagesUseSortedIndices(t *testing.T) {
	u := newUploader(t)
	bad := ExposureKey{Key: "BBBBBBBBBBBBBBBBBBBBBB==", IntervalNumber: u.midnight(3), IntervalCount: 144, TransmissionRisk: 9}
	good := ExposureKey{Key: "AAAAAAAAAAAAAAAAAAAAAA==", IntervalNumber: u.midnight(2), IntervalCount: 144}
	v, err := Validate(u.request([]ExposureKey{bad, good}, ReportTypeConfirmed, 0), u.auth, u.now)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(v.DropErrors) != 1 || !strings.HasPrefix(v.DropErrors[0], "key 1 cannot be imported: invalid transmission risk") {
		t.Errorf("drop errors = %q", v.DropErrors)
	}
	const wantMsg = "1 error occurred:\n\t* key 1 cannot be imported: invalid transmission risk: 9, must be >= 0 && <= 8\n\n"
	if got := v.PartialFailure().Message; got != wantMsg {
		t.Errorf("partial failure message = %q, want %q", got, wantMsg)
	}
}

func TestAllKeysInvalid(t *testing.T) {
	u := newUploader(t)
	keys := []ExposureKey{keyAt(t, u.midnight(2), 0, 0), keyAt(t, u.midnight(1), 144, 10)}
	_, err := Validate(u.request(keys, ReportTypeConfirmed, 0), u.auth, u.now)
	e := wantError(t, err, http.StatusBadRequest, CodeBadRequest)
	if !strings.HasPrefix(e.Message, "unable to read request data: 2 errors occurred:") {
		t.Errorf("message = %q", e.Message)
	}
}

// TestSymptomOnsetDistance: keys more than 14 days from onset are dropped
// with a warning, never counted as a failure.
func TestSymptomOnsetDistance(t *testing.T) {
	u := newUploader(t)
	onsetToday := u.midnight(0)

	t.Run("some keys", func(t *testing.T) {
		far, near := u.key(15, 0), u.key(14, 0)
		req := u.request([]ExposureKey{far, near}, ReportTypeConfirmed, 0)
		req.SymptomOnsetInterval = onsetToday
		v, err := Validate(req, u.auth, u.now)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if v.Dropped != 0 || v.PartialFailure() != nil || len(v.Keys) != 1 || v.Keys[0].GetDaysSinceOnset() != -14 {
			t.Fatalf("verified = %+v", v)
		}
		if len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "symptom onset is too large, 15 > 14 - saving without this key") {
			t.Errorf("warnings = %q", v.Warnings)
		}
	})
	t.Run("every key", func(t *testing.T) {
		req := u.request([]ExposureKey{u.key(15, 0)}, ReportTypeConfirmed, 0)
		req.SymptomOnsetInterval = onsetToday
		v, err := Validate(req, u.auth, u.now)
		if err != nil {
			t.Fatalf("Validate: %v (the reference answers 200 and stores nothing)", err)
		}
		if len(v.Keys) != 0 || len(v.Warnings) != 1 || v.Dropped != 0 {
			t.Errorf("verified = %+v", v)
		}
	})
	t.Run("the rest failed", func(t *testing.T) {
		req := u.request([]ExposureKey{u.key(15, 0), keyAt(t, u.midnight(1), 144, 9)}, ReportTypeConfirmed, 0)
		req.SymptomOnsetInterval = onsetToday
		_, err := Validate(req, u.auth, u.now)
		e := wantError(t, err, http.StatusBadRequest, CodeBadRequest)
		if len(e.Warnings) != 1 {
			t.Errorf("warnings = %q", e.Warnings)
		}
	})
}

func TestSymptomOnsetChoice(t *testing.T) {
	u := newUploader(t)
	current := intervalNumber(u.now)
	cases := []struct {
		name       string
		requested  int32
		certified  int32
		keyDaysAgo int32 // 0: yesterday's key
		wantDSOfor int32 // days since onset of that key
	}{
		{name: "request", requested: u.midnight(2), certified: u.midnight(5), wantDSOfor: 1},
		{name: "request not at midnight", requested: u.midnight(2) + 77, wantDSOfor: 1},
		{name: "certificate", certified: u.midnight(5), wantDSOfor: 4},
		{name: "default 4 days ago", wantDSOfor: 3},
		{name: "request in the future", requested: current + 10, certified: u.midnight(5), wantDSOfor: 4},
		{name: "request now", requested: current, wantDSOfor: 3},
		{name: "request 28 days ago", requested: u.midnight(28), keyDaysAgo: 15, wantDSOfor: 13},
		{name: "request 29 days ago", requested: u.midnight(29), certified: u.midnight(6), wantDSOfor: 5},
		{name: "certificate too old", certified: u.midnight(29), wantDSOfor: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := u.key(max(tc.keyDaysAgo, 1), 0)
			req := u.request([]ExposureKey{key}, ReportTypeLikely, tc.certified)
			req.SymptomOnsetInterval = tc.requested
			v, err := Validate(req, u.auth, u.now)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if len(v.Keys) != 1 {
				t.Fatalf("kept %d keys, warnings %q", len(v.Keys), v.Warnings)
			}
			if k := v.Keys[0]; !k.GetHasDaysSinceOnset() || k.GetDaysSinceOnset() != tc.wantDSOfor {
				t.Errorf("days since onset = %d (has %v), want %d", k.GetDaysSinceOnset(), k.GetHasDaysSinceOnset(), tc.wantDSOfor)
			}
		})
	}
}

func TestOverlap(t *testing.T) {
	u := newUploader(t)
	s := u.midnight(3)
	cases := []struct {
		name string
		keys []ExposureKey
		why  string // empty: accepted
	}{
		{name: "adjacent", keys: []ExposureKey{keyAt(t, s, 72, 0), keyAt(t, s+72, 72, 0), keyAt(t, s+144, 144, 0)}},
		{name: "3 keys share a start", keys: []ExposureKey{keyAt(t, s, 144, 0), keyAt(t, s, 36, 0), keyAt(t, s, 72, 0), keyAt(t, s+144, 144, 0)}},
		{name: "4 keys share a start", keys: []ExposureKey{keyAt(t, s, 144, 0), keyAt(t, s, 36, 0), keyAt(t, s, 72, 0), keyAt(t, s, 100, 0)},
			why: "too many overlapping keys for start interval"},
		{name: "starts inside the previous key", keys: []ExposureKey{keyAt(t, s, 144, 0), keyAt(t, s+72, 144, 0)},
			why: "non aligned overlapping intervals"},
		{name: "overlaps by one interval", keys: []ExposureKey{keyAt(t, s, 144, 0), keyAt(t, s+143, 144, 0)},
			why: "non aligned overlapping intervals"},
		{name: "starts inside the longest same-start key", keys: []ExposureKey{keyAt(t, s, 36, 0), keyAt(t, s, 144, 0), keyAt(t, s+100, 44, 0)},
			why: "non aligned overlapping intervals"},
		{name: "overlapping key already dropped", keys: []ExposureKey{keyAt(t, s, 144, 0), keyAt(t, s+72, 144, 9)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Validate(u.request(tc.keys, ReportTypeConfirmed, 0), u.auth, u.now)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				for i := 1; i < len(v.Keys); i++ {
					a, b := v.Keys[i-1], v.Keys[i]
					if a.GetRollingStart() > b.GetRollingStart() ||
						(a.GetRollingStart() == b.GetRollingStart() && a.GetRollingPeriod() > b.GetRollingPeriod()) {
						t.Errorf("keys not sorted by start, period")
					}
				}
				return
			}
			e := wantError(t, err, http.StatusBadRequest, CodeBadRequest)
			if !strings.Contains(e.Message, tc.why) {
				t.Errorf("message %q does not say %q", e.Message, tc.why)
			}
		})
	}
}

func TestKeyCount(t *testing.T) {
	u := newUploader(t)
	keys := make([]ExposureKey, 31)
	for i := range keys {
		keys[i] = keyAt(t, u.midnight(1)+int32(i)*4, 4, 0)
	}
	v, err := Validate(u.request(keys[:30], ReportTypeConfirmed, 0), u.auth, u.now)
	if err != nil || len(v.Keys) != 30 {
		t.Fatalf("30 keys: %v", err)
	}
	_, err = Validate(u.request(keys, ReportTypeConfirmed, 0), u.auth, u.now)
	e := wantError(t, err, http.StatusBadRequest, CodeBadRequest)
	if !strings.Contains(e.Message, "too many exposure keys in publish: 31, max of 30") {
		t.Errorf("message = %q", e.Message)
	}
}

// TestURLSafeKey accepts a key in the URL alphabet without padding and
// stores its bytes; the same key in both alphabets is stored once.
func TestURLSafeKey(t *testing.T) {
	u := newUploader(t)
	raw := []byte{0xfb, 0xff, 0xbf, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	std := base64.StdEncoding.EncodeToString(raw)
	url := base64.RawURLEncoding.EncodeToString(raw)
	if std == url || strings.ContainsAny(url, "+/=") {
		t.Fatal("test key does not exercise the URL alphabet")
	}
	for name, keys := range map[string][]ExposureKey{
		"url only":  {{Key: url, IntervalNumber: u.midnight(1), IntervalCount: 144}},
		"both ways": {{Key: url, IntervalNumber: u.midnight(1), IntervalCount: 144}, {Key: std, IntervalNumber: u.midnight(1), IntervalCount: 144}},
	} {
		v, err := Validate(u.request(keys, ReportTypeConfirmed, 0), u.auth, u.now)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(v.Keys) != 1 || string(v.Keys[0].GetKeyData()) != string(raw) {
			t.Errorf("%s: kept %v", name, v.Keys)
		}
	}
}

func TestNegativeStoresNothing(t *testing.T) {
	u := newUploader(t)
	v, err := Validate(u.request([]ExposureKey{u.key(2, 0)}, ReportTypeNegative, 0), u.auth, u.now)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !v.StoreNothing || len(v.Keys) != 1 || v.Keys[0].GetReportType() != 5 || v.Keys[0].GetTransmissionRisk() != 6 {
		t.Errorf("verified = %+v", v)
	}
}

func TestOnsetIntervalDirect(t *testing.T) {
	now := testNow()
	today := intervalNumber(now) / 144
	for _, tc := range []struct {
		requested int32
		certified uint32
		want      int32
	}{
		{0, 0, (today - 4) * 144},
		{-5, 1 << 31, (today - 4) * 144}, // negative and overflowing values are implausible
		{(today-1)*144 + 5, 0, (today - 1) * 144},
		{0, uint32((today - 2) * 144), (today - 2) * 144},
	} {
		if got := onsetInterval(tc.requested, tc.certified, now); got != tc.want {
			t.Errorf("onsetInterval(%d, %d) = %d, want %d", tc.requested, tc.certified, got, tc.want)
		}
	}
	if daysBetween(-1, 0) != 1 || daysBetween(143, 144) != 1 || daysBetween(0, 143) != 0 {
		t.Error("daysBetween does not count UTC days")
	}
}
