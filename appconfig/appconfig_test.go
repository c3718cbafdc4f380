package appconfig_test

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/appconfig"
	"github.com/covid-backend/covid-backend/fsm"
)

// The example an operator starts from reads and passes the state
// machine's checks, and its document reads back to the same
// configuration.
func TestExampleIsValid(t *testing.T) {
	data, err := os.ReadFile("../deploy/appconfig/example.json")
	if err != nil {
		t.Fatal(err)
	}
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
	data, err := os.ReadFile("../deploy/appconfig/example.json")
	if err != nil {
		t.Fatal(err)
	}
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
