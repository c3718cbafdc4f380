package appconfig_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/appconfig"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// example is the document an operator starts from.
func example(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("../deploy/appconfig/example.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The example an operator starts from reads and passes the state
// machine's checks, and its document reads back to the same
// configuration.
func TestExampleIsValid(t *testing.T) {
	data := example(t)
	c, err := appconfig.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsm.ValidateAppConfig(c); err != nil {
		t.Fatal(err)
	}
	doc, err := appconfig.JSON(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := appconfig.Parse(doc)
	if err != nil || !proto.Equal(again, c) {
		t.Fatalf("the document reads back as %v (%v), want %v", again, err, c)
	}
}

// A document is refused before the state machine sees it when it is not
// one: unknown fields, names that are not GAEN's, weights finer than
// hundredths or missing, more than MaxDocument.
func TestParseRefusals(t *testing.T) {
	data := example(t)
	doc := string(data)
	for _, tc := range []struct{ name, doc, says string }{
		{"an unknown field", `{"gaen_v3": {}}`, "unknown field"},
		{"an infectiousness", strings.Replace(doc, `"-2": "high"`, `"-2": "very high"`, 1), "infectiousnessForDaysSinceOnsetOfSymptoms"},
		{"a day of 15", strings.Replace(doc, `"-2": "high"`, `"15": "high"`, 1), "days from -14 to 14"},
		{"a weight missing", strings.Replace(doc, `"other": 0`, `"others": 0`, 1), "other is missing"},
		{"a negative weight", strings.Replace(doc, `"other": 0`, `"other": -0.5`, 1), "in hundredths"},
		{"a megabyte", `{"texts": {"en": {"a": "` + strings.Repeat("x", appconfig.MaxDocument) + `"}}}`, "larger than"},
	} {
		if _, err := appconfig.Parse([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.says)
		}
	}
}

// The service is told apps only once an end is scheduled, in the
// platforms' words and UTC; an active configuration's document has no
// service field (versions before the end of service keep their bytes),
// and a document shown and sent back keeps its service unread.
func TestServiceInTheDocument(t *testing.T) {
	data := example(t)
	c, err := appconfig.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := appconfig.JSON(c); strings.Contains(string(doc), "service") {
		t.Fatalf("an active configuration tells a service: %s", doc)
	}
	for _, tc := range []struct {
		status fsmpb.ServiceStatus
		wind   int64
		want   appconfig.Service
	}{
		{fsmpb.ServiceStatus_SERVICE_STATUS_ACTIVE, 1_803_254_400, appconfig.Service{Status: "active", WindDownFrom: "2027-02-22T00:00:00Z"}},
		{fsmpb.ServiceStatus_SERVICE_STATUS_WINDING_DOWN, 1_803_254_400, appconfig.Service{Status: "winding-down", WindDownFrom: "2027-02-22T00:00:00Z"}},
		{fsmpb.ServiceStatus_SERVICE_STATUS_ENDED, 1_803_254_400, appconfig.Service{Status: "ended", WindDownFrom: "2027-02-22T00:00:00Z"}},
	} {
		c.ServiceStatus, c.WindDownUnix = tc.status, tc.wind
		doc, err := appconfig.JSON(c)
		if err != nil {
			t.Fatal(err)
		}
		var read appconfig.Document
		if err := json.Unmarshal(doc, &read); err != nil || read.Service == nil || *read.Service != tc.want {
			t.Fatalf("%v: %+v (%v), want %+v", tc.status, read.Service, err, tc.want)
		}
		again, err := appconfig.Parse(doc)
		if err != nil || again.GetServiceStatus() != fsmpb.ServiceStatus_SERVICE_STATUS_ACTIVE || again.GetWindDownUnix() != 0 {
			t.Fatalf("read back: %v (%v), want the service left to the region", again, err)
		}
	}
}
