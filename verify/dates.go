package verify

import (
	"net/http"
	"time"
)

// Date rules of the reference: a test or symptom date lies between 28 days
// ago and today, in the patient's time zone (tzOffset, minutes east of UTC).
const (
	maxDateAgeDays = 28
	dateLayout     = "2006-01-02"
	daySeconds     = 24 * 60 * 60
)

// ParseDay reads a YYYY-MM-DD date as days since 1970-01-01 (0: none
// given) and checks that it is within the allowed range of today.
func ParseDay(date string, tzOffsetMinutes float64, now time.Time) (int32, *Error) {
	if date == "" {
		return 0, nil
	}
	if tzOffsetMinutes < minTZOffset || tzOffsetMinutes > maxTZOffset {
		// Beyond every time zone: it would move "today" anywhere, and a
		// date of any year into a token.
		return 0, fail(http.StatusBadRequest, CodeInvalidDate, "tzOffset: want the patient's offset from UTC in minutes, -720 to 840")
	}
	t, err := time.Parse(dateLayout, date)
	if err != nil {
		return 0, fail(http.StatusBadRequest, CodeInvalidDate, "date "+quote(date)+": want YYYY-MM-DD")
	}
	day := t.Unix() / daySeconds
	today := (now.Unix() + int64(tzOffsetMinutes*60)) / daySeconds
	if day > today || day < today-maxDateAgeDays {
		return 0, fail(http.StatusBadRequest, CodeInvalidDate, "date "+date+" is not within the last 28 days")
	}
	return int32(day), nil
}

// Bounds of tzOffset, in minutes: the time zones in use run from UTC-12:00
// to UTC+14:00.
const (
	minTZOffset = -12 * 60
	maxTZOffset = 14 * 60
)

// FormatDay writes a day number as YYYY-MM-DD ("" for 0).
func FormatDay(day int32) string {
	if day == 0 {
		return ""
	}
	return time.Unix(int64(day)*daySeconds, 0).UTC().Format(dateLayout)
}

// OnsetInterval is the GAEN interval number of a day's UTC midnight (0 for
// no day), the certificate's symptomOnsetInterval.
func OnsetInterval(day int32) int32 { return day * (daySeconds / 600) }

// FormatExpiry writes an expiry as the reference does: RFC 1123, UTC.
func FormatExpiry(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC1123) }
