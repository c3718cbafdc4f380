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
	if len(pk.GetKeyData()) != KeyLen {
		return Key{}, errors.New("key data must be 16 bytes")
	}
	if p := pk.GetRollingPeriod(); p < 1 || p > MaxRollingPeriod {
		return Key{}, errors.New("rolling period out of range 1..144")
	}
	if r := pk.GetTransmissionRisk(); r < 0 || r > MaxTransmissionRisk {
		return Key{}, errors.New("transmission risk out of range 0..8")
	}
	if r := pk.GetReportType(); r < 0 || r > MaxReportType {
		return Key{}, errors.New("report type out of range 0..5")
	}
	if d := pk.GetDaysSinceOnset(); d < -MaxDaysSinceOnset || d > MaxDaysSinceOnset {
		return Key{}, errors.New("days since onset out of range -14..14")
	}
	if pk.GetRollingStart() < 0 {
		return Key{}, errors.New("negative rolling start")
	}
	return Key{
		Data: TEK(pk.GetKeyData()), RollingStart: pk.GetRollingStart(),
		RollingPeriod: pk.GetRollingPeriod(), TransmissionRisk: pk.GetTransmissionRisk(),
		ReportType: pk.GetReportType(), DaysSinceOnset: pk.GetDaysSinceOnset(),
		HasDaysSinceOnset: pk.GetHasDaysSinceOnset(),
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
