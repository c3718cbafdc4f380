package api

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed/feedpb"
)

// A rolled-back submission leaves the full set, shows as REVOKED in the
// next export and as removals in the delta feed; its reason is kept.
func TestRollbackReachesExportsAndFeed(t *testing.T) {
	ts, key := downloadServer(t)
	subs := decode[struct{ Submissions []SubmissionView }](t, ts.admin(http.MethodGet, "/v1/admin/submissions", nil))
	if len(subs.Submissions) != 1 || subs.Submissions[0].Keys != 14 {
		t.Fatalf("submissions %+v", subs)
	}
	bad := []struct {
		name string
		body RevokeRequest
		code int
	}{
		{"no reason", RevokeRequest{SubmissionID: subs.Submissions[0].ID}, http.StatusBadRequest},
		// A reason its audit event could not hold: refused before the roll-back.
		{"a reason over 500 characters", RevokeRequest{Reason: strings.Repeat("é", 501), SubmissionID: subs.Submissions[0].ID}, http.StatusBadRequest},
		{"unknown submission", RevokeRequest{Reason: "x", SubmissionID: strings.Repeat("ab", 16)}, http.StatusNotFound},
		{"malformed id", RevokeRequest{Reason: "x", SubmissionID: "zz"}, http.StatusBadRequest},
		{"unknown key", RevokeRequest{Reason: "x", Keys: []string{"AAAAAAAAAAAAAAAAAAAAAA=="}}, http.StatusNotFound},
	}
	for _, tc := range bad {
		if w := ts.admin(http.MethodPost, "/v1/admin/revocations", tc.body); w.Code != tc.code {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	w := ts.admin(http.MethodPost, "/v1/admin/revocations", RevokeRequest{Reason: "test result was wrong", SubmissionID: subs.Submissions[0].ID})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"revoked":14`) {
		t.Fatalf("rollback: %d %s", w.Code, w.Body)
	}
	if w := ts.admin(http.MethodPost, "/v1/admin/seal", nil); w.Code != http.StatusOK {
		t.Fatalf("seal: %d %s", w.Code, w.Body)
	}
	batches := strings.Split(ts.do(http.MethodGet, "/v1/exports/batches.txt", nil, nil).Body.String(), "\n")
	f := ts.do(http.MethodGet, "/"+batches[len(batches)-1], nil, nil)
	d, err := export.Decode(f.Body.Bytes())
	if err != nil || d.Verify(&key.PublicKey, "310", "v1") != nil {
		t.Fatalf("revision export: %v", err)
	}
	if len(d.File.RevisedKeys) != 14 || len(d.File.Keys) != 0 {
		t.Fatalf("revision export holds %d keys, %d revised", len(d.File.Keys), len(d.File.RevisedKeys))
	}
	for _, k := range d.File.RevisedKeys {
		if k.ReportType != export.ReportTypeRevoked {
			t.Fatalf("revised key with report type %d", k.ReportType)
		}
	}
	var delta, full feedpb.KeyFeed
	proto.Unmarshal(ts.do(http.MethodGet, "/v1/keys?since=1", nil, nil).Body.Bytes(), &delta)
	proto.Unmarshal(ts.do(http.MethodGet, "/v1/keys", nil, nil).Body.Bytes(), &full)
	if len(delta.GetRemoved()) != 14 || len(full.GetAdded()) != 0 {
		t.Fatalf("delta removes %d, full set holds %d", len(delta.GetRemoved()), len(full.GetAdded()))
	}
	revs := decode[struct{ Revocations []Revocation }](t, ts.admin(http.MethodGet, "/v1/admin/revocations", nil))
	if len(revs.Revocations) != 1 || revs.Revocations[0].Reason != "test result was wrong" {
		t.Fatalf("revocations %+v", revs)
	}
}
