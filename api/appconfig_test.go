package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/appconfig"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// appConfigDocument is an operator's document as appconfig.Document
// reads it.
const appConfigDocument = `{
 "gaen_v1": {"minimumRiskScore": 11, "attenuationScores": [4,4,4,4,4,4,4,4], "attenuationWeight": 50,
  "daysSinceLastExposureScores": [2,2,2,2,2,2,2,2], "daysSinceLastExposureWeight": 50, "durationScores": [5,5,5,5,5,5,5,5],
  "durationWeight": 50, "transmissionRiskScores": [3,3,3,3,3,3,3,3], "transmissionRiskWeight": 50, "durationAtAttenuationThresholds": [50,70]},
 "gaen_v2": {"infectiousnessForDaysSinceOnsetOfSymptoms": {"-2": "high", "-1": "high", "0": "high", "1": "standard"},
  "infectiousnessWhenDaysSinceOnsetMissing": "standard", "reportTypeWhenMissing": "confirmedTest",
  "infectiousnessWeights": {"standard": 1.0, "high": 1.5},
  "reportTypeWeights": {"confirmedTest": 1, "confirmedClinicalDiagnosis": 1, "selfReport": 0.8, "recursive": 0},
  "attenuationDurationThresholds": [55,63,70], "attenuationBucketWeights": {"immediate": 1.5, "near": 1, "medium": 0.5, "other": 0},
  "daysSinceLastExposureThreshold": 14, "minimumDailyScoreMinutes": 15},
 "minVersions": {"ios": "2.14.1", "android": "2.14"},
 "texts": {"nl": {"risk.high": "Verhoogd risico"}, "en": {"risk.high": "Increased risk"}},
 "switches": {"travel": true}
}`

// An operator sets the app configuration from a document; refusals name
// the field; apps read the pointer, the versioned JSON (ETag, 304, HEAD)
// and the zip, whose signature the export key verifies over the same
// configuration the state holds.
func TestAppConfigServed(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServerConfig(t, Config{Feed: feed.Config{Region: "test", SigningKeys: []export.SigningKey{{Private: key, KeyID: "310", KeyVersion: "v1"}}}})
	if w := ts.do(http.MethodGet, "/v1/appconfig", nil, nil); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no app configuration yet") {
		t.Fatalf("before any: %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct{ name, doc, says string }{
		{"an unknown field", `{"colour": "blue"}`, "unknown field"},
		{"a weight of 2.51", strings.Replace(appConfigDocument, `"immediate": 1.5`, `"immediate": 2.51`, 1), "v2.immediateDurationWeight"},
		{"a weight finer than hundredths", strings.Replace(appConfigDocument, `"selfReport": 0.8`, `"selfReport": 0.805`, 1), "in hundredths"},
		{"a report type", strings.Replace(appConfigDocument, `"confirmedTest",`, `"positive",`, 1), "reportTypeWhenMissing"},
	} {
		w := ts.do(http.MethodPost, "/v1/admin/appconfig", []byte(tc.doc), map[string]string{"Authorization": "Bearer " + testToken})
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.says) {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	if w := ts.do(http.MethodPost, "/v1/admin/appconfig", []byte(appConfigDocument), map[string]string{"Authorization": "Bearer " + testToken}); w.Code != http.StatusOK {
		t.Fatalf("set: %d %s", w.Code, w.Body)
	}
	w := ts.do(http.MethodGet, "/v1/appconfig", nil, nil)
	var pointer struct {
		Version   uint32
		JSON, Zip string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &pointer); err != nil || pointer.Version != 1 || pointer.JSON != "/v1/appconfig/v1.json" {
		t.Fatalf("pointer: %s (%v)", w.Body, err)
	}
	doc := ts.do(http.MethodGet, pointer.JSON, nil, nil)
	var d appconfig.Document
	if err := json.Unmarshal(doc.Body.Bytes(), &d); err != nil || d.Version != 1 || d.GAENv2.InfectiousnessWeights["high"] != 1.5 ||
		d.GAENv2.InfectiousnessForDaysSinceOnsetOfSymptoms["-14"] != "none" || d.Texts["nl"]["risk.high"] != "Verhoogd risico" {
		t.Fatalf("document: %s (%v)", doc.Body, err)
	}
	if strings.Contains(doc.Body.String(), "operator") {
		t.Fatal("the public document names its author")
	}
	etag := doc.Header().Get("ETag")
	if w := ts.do(http.MethodGet, pointer.JSON, nil, map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
		t.Fatalf("with its ETag: %d", w.Code)
	}
	if w := ts.do(http.MethodHead, pointer.JSON, nil, nil); w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
		t.Fatalf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
	z := ts.do(http.MethodGet, pointer.Zip, nil, nil)
	bin, err := export.VerifyBlob(z.Body.Bytes(), &key.PublicKey, "310", "v1")
	if err != nil {
		t.Fatalf("the zip's signature: %v", err)
	}
	var got fsmpb.AppConfig
	held, _ := ts.node.FSM().AppConfig(1)
	held.Author = ""
	if err := proto.Unmarshal(bin, &got); err != nil || !proto.Equal(&got, held) {
		t.Fatalf("the zip holds %v, the state %v (%v)", &got, held, err)
	}
	if again := ts.do(http.MethodGet, pointer.Zip, nil, nil); again.Body.String() != z.Body.String() {
		t.Fatal("the zip changed between two requests")
	}
	if w := ts.do(http.MethodGet, "/v1/appconfig/v2.json", nil, nil); w.Code != http.StatusNotFound {
		t.Fatalf("a version not set: %d", w.Code)
	}
	h := ts.admin(http.MethodGet, "/v1/admin/appconfig/history", nil)
	if !strings.Contains(h.Body.String(), `"version":1`) || !strings.Contains(h.Body.String(), time.Now().UTC().Format("2006-01-02")) {
		t.Fatalf("history: %s", h.Body)
	}
}

// An operator edits the configuration in the console: a preview lists
// what the document changes in the version in force and saves nothing; a
// document the checks refuse is shown again with the field named; saving
// keeps the next version with the operator as author, in the audit log.
func TestPortalAppConfig(t *testing.T) {
	ts := verifyServer(t)
	addOperator(t, ts)
	ops := operatorPortal(t, ts)
	_, page, _ := ops.get("/appconfig")
	if !strings.Contains(page, "No configuration is in force yet") {
		t.Fatal("the empty page")
	}
	save := func(doc, action string) (int, string) {
		t.Helper()
		_, page, _ := ops.get("/appconfig")
		return ops.post("/appconfig", url.Values{"csrf": {formToken(t, page)}, "document": {doc}, "action": {action}})
	}
	if status, _ := save(appConfigDocument, "save"); status != http.StatusSeeOther {
		t.Fatalf("first save: %d", status)
	}
	edited := strings.Replace(appConfigDocument, `"minimumRiskScore": 11`, `"minimumRiskScore": 20`, 1)
	status, answer := save(edited, "preview")
	if status != http.StatusOK || !strings.Contains(html.UnescapeString(answer), "gaen_v1.minimumRiskScore: 11 → 20") {
		t.Fatalf("preview: %d", status)
	}
	if cur, _ := ts.node.FSM().AppConfig(0); cur.GetVersion() != 1 {
		t.Fatal("a preview saved")
	}
	bad := strings.Replace(appConfigDocument, `"minimumRiskScore": 11`, `"minimumRiskScore": 300`, 1)
	if status, answer := save(bad, "save"); status != http.StatusBadRequest || !strings.Contains(answer, "v1.minimumRiskScore: 300, want 0..255") {
		t.Fatalf("a bad document: %d", status)
	}
	if status, _ := save(edited, "save"); status != http.StatusSeeOther {
		t.Fatalf("second save: %d", status)
	}
	cur, _ := ts.node.FSM().AppConfig(0)
	if cur.GetVersion() != 2 || cur.GetAuthor() != "ops@region.example" || cur.GetV1().GetMinimumRiskScore() != 20 {
		t.Fatalf("in force: version %d by %q", cur.GetVersion(), cur.GetAuthor())
	}
	if events := auditOf(ts, "", 5); len(events) == 0 || events[0].GetAction() != "app configuration" || events[0].GetTarget() != "version 2" {
		t.Fatalf("audit %v", events)
	}
}
