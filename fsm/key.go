package fsm

import (
	"errors"
	"strconv"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Limits of the key fields that the state stores compactly.
const (
	MaxRollingPeriod    = 144
	MaxTransmissionRisk = 8
	MaxReportType       = 5
	MaxDaysSinceOnset   = 14
)

// KeyFromProto converts and checks a key of a command or snapshot.
func KeyFromProto(pk *fsmpb.Key) (Key, error) {
	return newKey(pk.GetKeyData(), pk.GetRollingStart(), pk.GetRollingPeriod(), pk.GetTransmissionRisk(),
		pk.GetReportType(), pk.GetDaysSinceOnset(), pk.GetHasDaysSinceOnset())
}

// newKey checks a key's fields and returns the key.
func newKey(data []byte, start, period, risk, report, onset int32, hasOnset bool) (Key, error) {
	switch {
	case len(data) != KeyLen:
		return Key{}, errors.New("key data must be 16 bytes")
	case period < 1 || period > MaxRollingPeriod:
		return Key{}, errors.New("rolling period out of range 1..144")
	case risk < 0 || risk > MaxTransmissionRisk:
		return Key{}, errors.New("transmission risk out of range 0..8")
	case report < 0 || report > MaxReportType:
		return Key{}, errors.New("report type out of range 0..5")
	case onset < -MaxDaysSinceOnset || onset > MaxDaysSinceOnset:
		return Key{}, errors.New("days since onset out of range -14..14")
	case start < 0:
		return Key{}, errors.New("negative rolling start")
	}
	return Key{
		Data: TEK(data), RollingStart: start, RollingPeriod: period, TransmissionRisk: risk,
		ReportType: report, DaysSinceOnset: onset, HasDaysSinceOnset: hasOnset,
	}, nil
}

// Proto converts a key to its wire form.
func (k Key) Proto() *fsmpb.Key {
	return &fsmpb.Key{
		KeyData: k.Data[:], RollingStart: k.RollingStart, RollingPeriod: k.RollingPeriod,
		TransmissionRisk: k.TransmissionRisk, ReportType: k.ReportType,
		HasDaysSinceOnset: k.HasDaysSinceOnset, DaysSinceOnset: k.DaysSinceOnset,
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
