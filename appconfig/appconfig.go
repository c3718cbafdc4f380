// Package appconfig is the app configuration as apps and operators see
// it: a JSON document in the platforms' names and units (the state
// machine keeps it typed, fsm/appconfig.go), and a zip of export.bin (the
// configuration as protobuf) and export.sig signed with the region's
// export keys, as CWA shipped its configuration, so that apps verify it
// with the key they already verify exports with.
package appconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// MaxDocument bounds a document an operator sends: the state machine's
// bounds on texts (256 KiB) with room for the rest.
const MaxDocument = 512 << 10

// Document is the configuration in JSON, GAEN's names and units.
type Document struct {
	Version     uint32                       `json:"version,omitempty"`
	Time        string                       `json:"time,omitempty"`
	GAENv1      V1                           `json:"gaen_v1"`
	GAENv2      V2                           `json:"gaen_v2"`
	MinVersions map[string]string            `json:"minVersions,omitempty"`
	Texts       map[string]map[string]string `json:"texts,omitempty"`
	Switches    map[string]bool              `json:"switches,omitempty"`
	// Service is set by the region (covid-node service), never by the
	// document an operator sends (Parse ignores it): absent while the
	// service is active and no end is scheduled.
	Service *Service `json:"service,omitempty"`
}

// Service tells apps where the region's service stands: status "active"
// (windDownFrom announces an end), "winding-down" (from windDownFrom no
// upload is taken; files stay until their keys age out) or "ended" (the
// last keys aged out; nothing is served).
type Service struct {
	Status       string `json:"status"`
	WindDownFrom string `json:"windDownFrom,omitempty"`
}

// serviceStatuses are the statuses' names, by fsmpb.ServiceStatus.
var serviceStatuses = []string{"active", "winding-down", "ended"}

// ServiceOf is the service a configuration tells apps of (nil: active,
// no end scheduled).
func ServiceOf(c *fsmpb.AppConfig) *Service {
	if c.GetServiceStatus() == fsmpb.ServiceStatus_SERVICE_STATUS_ACTIVE && c.GetWindDownUnix() == 0 {
		return nil
	}
	s := &Service{Status: name(serviceStatuses, uint32(c.GetServiceStatus()))}
	if w := c.GetWindDownUnix(); w != 0 {
		s.WindDownFrom = time.Unix(w, 0).UTC().Format(time.RFC3339)
	}
	return s
}

// V1 is GAEN v1's ExposureConfiguration.
type V1 struct {
	MinimumRiskScore                uint32   `json:"minimumRiskScore"`
	AttenuationScores               []uint32 `json:"attenuationScores"`
	AttenuationWeight               uint32   `json:"attenuationWeight"`
	DaysSinceLastExposureScores     []uint32 `json:"daysSinceLastExposureScores"`
	DaysSinceLastExposureWeight     uint32   `json:"daysSinceLastExposureWeight"`
	DurationScores                  []uint32 `json:"durationScores"`
	DurationWeight                  uint32   `json:"durationWeight"`
	TransmissionRiskScores          []uint32 `json:"transmissionRiskScores"`
	TransmissionRiskWeight          uint32   `json:"transmissionRiskWeight"`
	DurationAtAttenuationThresholds []uint32 `json:"durationAtAttenuationThresholds"`
}

// V2 is GAEN v2's configuration: infectiousness by day since onset
// ("-14" to "14"; "none", "standard" or "high"), weights as the platforms
// take them (0.0 to 2.5, in hundredths).
type V2 struct {
	InfectiousnessForDaysSinceOnsetOfSymptoms map[string]string  `json:"infectiousnessForDaysSinceOnsetOfSymptoms"`
	InfectiousnessWhenDaysSinceOnsetMissing   string             `json:"infectiousnessWhenDaysSinceOnsetMissing"`
	ReportTypeWhenMissing                     string             `json:"reportTypeWhenMissing"`
	InfectiousnessWeights                     map[string]float64 `json:"infectiousnessWeights"`
	ReportTypeWeights                         map[string]float64 `json:"reportTypeWeights"`
	AttenuationDurationThresholds             []uint32           `json:"attenuationDurationThresholds"`
	AttenuationBucketWeights                  map[string]float64 `json:"attenuationBucketWeights"`
	DaysSinceLastExposureThreshold            uint32             `json:"daysSinceLastExposureThreshold"`
	MinimumDailyScoreMinutes                  uint32             `json:"minimumDailyScoreMinutes"`
}

var (
	infectiousness = []string{"none", "standard", "high"}
	reportTypes    = []string{"", "confirmedTest", "confirmedClinicalDiagnosis", "selfReport", "recursive"}
)

// Of is the document of a kept configuration (its author is not
// published).
func Of(c *fsmpb.AppConfig) Document {
	v1, v2 := c.GetV1(), c.GetV2()
	d := Document{Version: c.GetVersion(), Time: time.Unix(c.GetTimeUnix(), 0).UTC().Format(time.RFC3339),
		GAENv1: V1{MinimumRiskScore: v1.GetMinimumRiskScore(), AttenuationScores: v1.GetAttenuationScores(), AttenuationWeight: v1.GetAttenuationWeight(),
			DaysSinceLastExposureScores: v1.GetDaysSinceLastExposureScores(), DaysSinceLastExposureWeight: v1.GetDaysSinceLastExposureWeight(),
			DurationScores: v1.GetDurationScores(), DurationWeight: v1.GetDurationWeight(), TransmissionRiskScores: v1.GetTransmissionRiskScores(),
			TransmissionRiskWeight: v1.GetTransmissionRiskWeight(), DurationAtAttenuationThresholds: v1.GetDurationAtAttenuationThresholds()},
		GAENv2: V2{InfectiousnessForDaysSinceOnsetOfSymptoms: map[string]string{},
			InfectiousnessWhenDaysSinceOnsetMissing: name(infectiousness, v2.GetInfectiousnessWhenDaysSinceOnsetMissing()),
			ReportTypeWhenMissing:                   name(reportTypes, v2.GetReportTypeWhenMissing()),
			InfectiousnessWeights: map[string]float64{"standard": weight(v2.GetInfectiousnessStandardWeightPercent()),
				"high": weight(v2.GetInfectiousnessHighWeightPercent())},
			ReportTypeWeights: map[string]float64{"confirmedTest": weight(v2.GetReportTypeConfirmedTestWeightPercent()),
				"confirmedClinicalDiagnosis": weight(v2.GetReportTypeConfirmedClinicalDiagnosisWeightPercent()),
				"selfReport":                 weight(v2.GetReportTypeSelfReportWeightPercent()), "recursive": weight(v2.GetReportTypeRecursiveWeightPercent())},
			AttenuationDurationThresholds: v2.GetAttenuationDurationThresholds(),
			AttenuationBucketWeights: map[string]float64{"immediate": weight(v2.GetImmediateDurationWeightPercent()),
				"near": weight(v2.GetNearDurationWeightPercent()), "medium": weight(v2.GetMediumDurationWeightPercent()),
				"other": weight(v2.GetOtherDurationWeightPercent())},
			DaysSinceLastExposureThreshold: v2.GetDaysSinceLastExposureThreshold(), MinimumDailyScoreMinutes: v2.GetMinimumDailyScoreMinutes()},
		Service: ServiceOf(c),
	}
	for i, v := range v2.GetInfectiousnessForDaysSinceOnset() {
		d.GAENv2.InfectiousnessForDaysSinceOnsetOfSymptoms[strconv.Itoa(i-14)] = name(infectiousness, v)
	}
	for _, m := range c.GetMinVersions() {
		d.MinVersions = setIn(d.MinVersions, m.GetPlatform(), m.GetVersion())
	}
	for _, t := range c.GetTexts() {
		if d.Texts == nil {
			d.Texts = map[string]map[string]string{}
		}
		d.Texts[t.GetLanguage()] = setIn(d.Texts[t.GetLanguage()], t.GetKey(), t.GetText())
	}
	for _, s := range c.GetSwitches() {
		d.Switches = setIn(d.Switches, s.GetName(), s.GetOn())
	}
	return d
}

func setIn[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

func name(names []string, i uint32) string {
	if int(i) < len(names) {
		return names[i]
	}
	return strconv.Itoa(int(i))
}

func weight(percent uint32) float64 { return float64(percent) / 100 }

// JSON is the document's bytes as served: the same for the same
// configuration on every node (maps in key order).
func JSON(c *fsmpb.AppConfig) ([]byte, error) {
	return json.MarshalIndent(Of(c), "", " ")
}

// Parse reads a document an operator sends into a configuration for the
// state machine to check: unknown fields, names and weights finer than
// hundredths are refused; its version, time and service are the state
// machine's (a document shown and sent back keeps them, unread).
func Parse(data []byte) (*fsmpb.AppConfig, error) {
	if len(data) > MaxDocument {
		return nil, fmt.Errorf("the document is larger than %d KiB", MaxDocument>>10)
	}
	var d Document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("the document: %w", err)
	}
	c := &fsmpb.AppConfig{V1: &fsmpb.ExposureConfigV1{MinimumRiskScore: d.GAENv1.MinimumRiskScore, AttenuationScores: d.GAENv1.AttenuationScores,
		AttenuationWeight: d.GAENv1.AttenuationWeight, DaysSinceLastExposureScores: d.GAENv1.DaysSinceLastExposureScores,
		DaysSinceLastExposureWeight: d.GAENv1.DaysSinceLastExposureWeight, DurationScores: d.GAENv1.DurationScores, DurationWeight: d.GAENv1.DurationWeight,
		TransmissionRiskScores: d.GAENv1.TransmissionRiskScores, TransmissionRiskWeight: d.GAENv1.TransmissionRiskWeight,
		DurationAtAttenuationThresholds: d.GAENv1.DurationAtAttenuationThresholds}}
	v2, err := parseV2(d.GAENv2)
	if err != nil {
		return nil, err
	}
	c.V2 = v2
	for _, p := range slices.Sorted(maps.Keys(d.MinVersions)) {
		c.MinVersions = append(c.MinVersions, &fsmpb.MinAppVersion{Platform: p, Version: d.MinVersions[p]})
	}
	for _, lang := range slices.Sorted(maps.Keys(d.Texts)) {
		for _, k := range slices.Sorted(maps.Keys(d.Texts[lang])) {
			c.Texts = append(c.Texts, &fsmpb.AppText{Language: lang, Key: k, Text: d.Texts[lang][k]})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(d.Switches)) {
		c.Switches = append(c.Switches, &fsmpb.AppSwitch{Name: n, On: d.Switches[n]})
	}
	return c, nil
}

func parseV2(d V2) (*fsmpb.ExposureConfigV2, error) {
	v := &fsmpb.ExposureConfigV2{AttenuationDurationThresholds: d.AttenuationDurationThresholds,
		DaysSinceLastExposureThreshold: d.DaysSinceLastExposureThreshold, MinimumDailyScoreMinutes: d.MinimumDailyScoreMinutes}
	var err error
	index := func(field string, names []string, s string) uint32 {
		for i, n := range names {
			if n == s && n != "" {
				return uint32(i)
			}
		}
		if err == nil {
			err = fmt.Errorf("gaen_v2.%s: %q, want one of %v", field, s, names)
		}
		return 0
	}
	for day := -14; day <= 14; day++ {
		s, ok := d.InfectiousnessForDaysSinceOnsetOfSymptoms[strconv.Itoa(day)]
		if !ok {
			s = "none"
		}
		v.InfectiousnessForDaysSinceOnset = append(v.InfectiousnessForDaysSinceOnset, index("infectiousnessForDaysSinceOnsetOfSymptoms", infectiousness, s))
	}
	for _, day := range slices.Sorted(maps.Keys(d.InfectiousnessForDaysSinceOnsetOfSymptoms)) {
		if n, perr := strconv.Atoi(day); (perr != nil || n < -14 || n > 14 || strconv.Itoa(n) != day) && err == nil {
			err = fmt.Errorf("gaen_v2.infectiousnessForDaysSinceOnsetOfSymptoms: %q, want days from -14 to 14", day)
		}
	}
	v.InfectiousnessWhenDaysSinceOnsetMissing = index("infectiousnessWhenDaysSinceOnsetMissing", infectiousness, d.InfectiousnessWhenDaysSinceOnsetMissing)
	v.ReportTypeWhenMissing = index("reportTypeWhenMissing", reportTypes, d.ReportTypeWhenMissing)
	percent := func(field string, m map[string]float64, key string) uint32 {
		w, ok := m[key]
		p := math.Round(w * 100)
		switch {
		case !ok && err == nil:
			err = fmt.Errorf("gaen_v2.%s: %s is missing", field, key)
		case (w < 0 || math.Abs(w*100-p) > 1e-6 || p > math.MaxUint32) && err == nil:
			err = fmt.Errorf("gaen_v2.%s.%s: %v, want a weight from 0.0 to 2.5 in hundredths", field, key, w)
		}
		return uint32(max(p, 0))
	}
	v.InfectiousnessStandardWeightPercent = percent("infectiousnessWeights", d.InfectiousnessWeights, "standard")
	v.InfectiousnessHighWeightPercent = percent("infectiousnessWeights", d.InfectiousnessWeights, "high")
	v.ReportTypeConfirmedTestWeightPercent = percent("reportTypeWeights", d.ReportTypeWeights, "confirmedTest")
	v.ReportTypeConfirmedClinicalDiagnosisWeightPercent = percent("reportTypeWeights", d.ReportTypeWeights, "confirmedClinicalDiagnosis")
	v.ReportTypeSelfReportWeightPercent = percent("reportTypeWeights", d.ReportTypeWeights, "selfReport")
	v.ReportTypeRecursiveWeightPercent = percent("reportTypeWeights", d.ReportTypeWeights, "recursive")
	v.ImmediateDurationWeightPercent = percent("attenuationBucketWeights", d.AttenuationBucketWeights, "immediate")
	v.NearDurationWeightPercent = percent("attenuationBucketWeights", d.AttenuationBucketWeights, "near")
	v.MediumDurationWeightPercent = percent("attenuationBucketWeights", d.AttenuationBucketWeights, "medium")
	v.OtherDurationWeightPercent = percent("attenuationBucketWeights", d.AttenuationBucketWeights, "other")
	return v, err
}

// Zip is the configuration as apps verify it: export.bin is its protobuf
// (without its author), export.sig its signature by each of keys, as an
// export file's (deterministic: every node serves the same bytes).
func Zip(c *fsmpb.AppConfig, keys []export.SigningKey) ([]byte, error) {
	bin, err := Bin(c)
	if err != nil {
		return nil, err
	}
	return export.SignedZip(bin, keys)
}

// Bin is the zip's export.bin: the configuration's protobuf without its
// author, its signers and its replicated signatures.
func Bin(c *fsmpb.AppConfig) ([]byte, error) {
	c = proto.CloneOf(c)
	c.Author, c.Signatures, c.Signers = "", nil, nil
	bin, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("appconfig: %w", err)
	}
	return bin, nil
}
