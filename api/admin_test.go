package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/node"
)

// Admin endpoints refuse requests without the right token, with a JSON
// error, and change nothing.
func TestAdminNeedsToken(t *testing.T) {
	ts := newTestServer(t, time.Now)
	cases := []struct {
		name, auth string
	}{
		{"missing", ""},
		{"wrong", "Bearer not-the-token"},
		{"not bearer", "Basic " + testToken},
	}
	for _, tc := range cases {
		for _, ep := range []struct{ method, path string }{
			{http.MethodGet, "/v1/admin/members"},
			{http.MethodPost, "/v1/admin/authorities"},
			{http.MethodDelete, "/v1/admin/members/n1"},
			{http.MethodPost, node.PathApplyBatch},
		} {
			w := ts.do(ep.method, ep.path, []byte(`{}`), map[string]string{"Authorization": tc.auth})
			body := decode[errorBody](t, w)
			if w.Code != http.StatusUnauthorized || body.Code != "unauthorized" || body.Error == "" {
				t.Fatalf("%s %s with %s token: %d %+v", ep.method, ep.path, tc.name, w.Code, body)
			}
		}
	}
	st, err := ts.node.Status()
	if err != nil || len(st.Members) != 1 {
		t.Fatalf("membership changed: %+v %v", st, err)
	}
}

// Authorities are added, rotated by kid, listed and removed; bad input is a
// 400 naming the problem.
func TestAuthorityLifecycle(t *testing.T) {
	ts := newTestServer(t, time.Now)
	registerGoldenAuthority(t, ts)
	listed := decode[struct{ Authorities []Authority }](t, ts.admin(http.MethodGet, "/v1/admin/authorities", nil))
	if len(listed.Authorities) != 1 || len(listed.Authorities[0].Keys) != 1 {
		t.Fatalf("list: %+v", listed)
	}
	rotated := listed.Authorities[0]
	rotated.Keys[0].Kid = "2"
	if w := ts.admin(http.MethodPost, "/v1/admin/authorities", rotated); w.Code != http.StatusOK {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	a, _ := ts.node.FSM().Authority("iss-test")
	if len(a.GetKeys()) != 2 {
		t.Fatalf("after rotation %d keys, want 2", len(a.GetKeys()))
	}
	bad := []struct {
		name string
		body any
		want string
	}{
		{"not pem", Authority{Issuer: "x", Audience: "y", AppIDs: []string{"a"}, Keys: []AuthorityKey{{Kid: "1", PublicKeyPEM: "nope"}}}, "PEM"},
		{"missing audience", Authority{Issuer: "x", AppIDs: []string{"a"}, Keys: rotated.Keys}, "required"},
		{"unknown field", []byte(`{"issuer":"x","color":"blue"}`), "unknown field"},
	}
	for _, tc := range bad {
		w := ts.admin(http.MethodPost, "/v1/admin/authorities", tc.body)
		body := decode[errorBody](t, w)
		if w.Code != http.StatusBadRequest || !strings.Contains(body.Error, tc.want) {
			t.Fatalf("%s: %d %+v", tc.name, w.Code, body)
		}
	}
	if w := ts.admin(http.MethodDelete, "/v1/admin/authorities/iss-test?kid=1", nil); w.Code != http.StatusOK {
		t.Fatalf("remove kid: %d %s", w.Code, w.Body)
	}
	if w := ts.admin(http.MethodDelete, "/v1/admin/authorities/nobody", nil); w.Code != http.StatusNotFound {
		t.Fatalf("remove unknown: %d %s", w.Code, w.Body)
	}
	a, _ = ts.node.FSM().Authority("iss-test")
	if len(a.GetKeys()) != 1 || a.GetKeys()[0].GetKid() != "2" {
		t.Fatalf("after removing kid 1: %v", a)
	}
}

// Status and probes report the node without secrets, and the public ones
// without anything that counts uploads: no key counts, raft indexes, term
// or raft addresses; operators get all of it from the admin status.
func TestStatusAndProbes(t *testing.T) {
	ts := newTestServer(t, time.Now)
	for _, path := range []string{"/healthz", "/readyz", "/v1/status"} {
		w := ts.do(http.MethodGet, path, nil, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), testToken) {
			t.Fatalf("%s leaks the admin token", path)
		}
	}
	if w := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT); w.Code != http.StatusUnauthorized {
		t.Fatalf("publish without an authority: %d", w.Code) // some raft traffic first
	}
	public := map[string]map[string]any{
		"/v1/status": decode[map[string]any](t, ts.do(http.MethodGet, "/v1/status", nil, nil)),
		"/readyz":    decode[map[string]any](t, ts.do(http.MethodGet, "/readyz", nil, nil)),
	}
	wantPublic := map[string][]string{"/v1/status": {"node_id", "region", "state", "leader_id", "ready"}, "/readyz": {"status"}}
	for path, body := range public {
		if len(body) != len(wantPublic[path]) {
			t.Fatalf("%s tells %v, want only %v", path, body, wantPublic[path])
		}
		for _, k := range wantPublic[path] {
			if _, ok := body[k]; !ok {
				t.Fatalf("%s lacks %q: %v", path, k, body)
			}
		}
	}
	for _, path := range []string{"/v1/keys?consistent=true", "/v1/federation?consistent=true"} {
		if w := ts.do(http.MethodGet, path, nil, nil); w.Code != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403", path, w.Code)
		}
	}
	if w := ts.do(http.MethodGet, "/v1/keys", nil, nil); w.Header().Get("X-Applied-Index") != "" {
		t.Fatal("a public read tells the applied index")
	}
	st := decode[map[string]any](t, ts.admin(http.MethodGet, "/v1/admin/status", nil))
	for _, k := range []string{"node_id", "region", "state", "leader_id", "term", "commit_index", "applied_index", "members", "keys"} {
		if _, ok := st[k]; !ok {
			t.Fatalf("admin status lacks %q: %v", k, st)
		}
	}
	w := ts.admin(http.MethodGet, "/v1/admin/keys?consistent=true", nil)
	if w.Code != http.StatusOK || w.Header().Get("X-Applied-Index") == "" {
		t.Fatalf("consistent read: %d %v", w.Code, w.Header())
	}
	if w := ts.do(http.MethodGet, "/nope", nil, nil); w.Code != http.StatusNotFound || decode[errorBody](t, w).Code != "not_found" {
		t.Fatalf("unknown path: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodGet, "/metrics", nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("metrics without a token: %d", w.Code)
	}
	metrics := ts.admin(http.MethodGet, "/metrics", nil).Body.String()
	for _, want := range []string{`covid_http_requests_total{route="/v1/status",status="200"} 2`, "covid_raft_leader 1", "covid_keys 0"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

// Wrong admin tokens count against the client (issue 21, finding 15: 800
// wrong tokens from one client all got 401): past its allowance the
// client is answered 429 before its token is compared, even the right
// one, while another address with the right token goes on.
func TestWrongAdminTokensAreLimited(t *testing.T) {
	ts := newTestServerConfig(t, Config{Limits: Limits{CodeFailuresPerHour: 10, CodeFailureBurst: 10}})
	from := func(ip, token string) int {
		req := httptest.NewRequest(http.MethodGet, "/v1/admin/members", nil)
		req.RemoteAddr = ip + ":4000"
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		ts.h.ServeHTTP(w, req)
		return w.Code
	}
	for i := range 10 {
		if got := from("198.51.100.7", "guess-"+strconv.Itoa(i)); got != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i+1, got)
		}
	}
	if got := from("198.51.100.7", "guess-11"); got != http.StatusTooManyRequests {
		t.Fatalf("wrong token 11: %d, want 429", got)
	}
	if got := from("198.51.100.7", testToken); got != http.StatusTooManyRequests {
		t.Fatalf("the right token from the guessing address: %d, want 429 (its token is not compared)", got)
	}
	if got := from("203.0.113.9", testToken); got != http.StatusOK {
		t.Fatalf("the right token from another address: %d, want 200", got)
	}
}

// Operators revoke a member certificate by its SHA-256 and list the
// revoked ones; a digest that is not one is 400 and revokes nothing.
func TestRevokeCertAPI(t *testing.T) {
	ts := newTestServer(t, time.Now)
	if w := ts.admin(http.MethodPost, "/v1/admin/certs/revoked", CertRevocation{CertSHA256: "abc", Reason: "leaked"}); w.Code != http.StatusBadRequest {
		t.Fatalf("a bad digest: %d %s", w.Code, w.Body)
	}
	sum := sha256.Sum256([]byte("n2's leaked renewal"))
	req := CertRevocation{CertSHA256: hex.EncodeToString(sum[:]), NodeID: "n2", Reason: "leaked"}
	if w := ts.admin(http.MethodPost, "/v1/admin/certs/revoked", req); w.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	list := decode[struct {
		RevokedCerts []RevokedCertView `json:"revoked_certs"`
	}](t, ts.admin(http.MethodGet, "/v1/admin/certs/revoked", nil))
	if len(list.RevokedCerts) != 1 || list.RevokedCerts[0].CertRevocation != req || !ts.node.FSM().CertRevoked(sum) {
		t.Fatalf("revoked: %+v", list)
	}
	if w := ts.do(http.MethodPost, "/v1/admin/certs/revoked", req, jsonCT); w.Code != http.StatusUnauthorized {
		t.Fatalf("without the admin token: %d", w.Code)
	}
}

// What operators do through the admin API (the command line) is in the
// audit log: every write that took effect, once (a handler's fuller event
// stands for it), and no refused one.
func TestAdminWritesAudited(t *testing.T) {
	ts := newTestServer(t, time.Now)
	newProvider(t, ts, "lab")
	if w := ts.admin(http.MethodPost, "/v1/admin/providers", ProviderRequest{ID: "lab"}); w.Code != http.StatusConflict {
		t.Fatalf("a refused write: %d", w.Code)
	}
	if w := ts.admin(http.MethodPost, "/v1/admin/users", UserRequest{Email: "ops@region.example", Name: "O", Roles: []string{"operator"},
		Password: "a long enough password"}); w.Code != http.StatusOK {
		t.Fatalf("add an account: %d %s", w.Code, w.Body)
	}
	var actions []string
	for _, ev := range auditOf(ts, "*", 10) {
		actions = append(actions, ev.GetAction()+" "+ev.GetTarget())
	}
	want := []string{"put account ops@region.example", "POST /v1/admin/providers /v1/admin/providers"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit log %q, want %q (newest first)", actions, want)
	}
}

// With plaintext raft the member routes on the API port take raw commands
// from this machine only: the admin token from elsewhere is refused, before
// the command is read (issue 21, finding 15: --insecure-dev gave the admin
// token raw writes from anywhere).
func TestPlaintextMemberRoutesOnlyOnThisMachine(t *testing.T) {
	ts := newTestServer(t, time.Now)
	before := ts.node.AppliedIndex()
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"192.0.2.1:1234", http.StatusForbidden},
		{"[2001:db8::1]:1234", http.StatusForbidden},
		{"127.0.0.1:1234", http.StatusBadRequest}, // admitted; the body is no batch
		{"[::1]:1234", http.StatusBadRequest},
	} {
		req := httptest.NewRequest(http.MethodPost, node.PathApplyBatch, strings.NewReader("not a batch"))
		req.RemoteAddr = tc.remote
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		ts.h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Fatalf("from %s: %d %s, want %d", tc.remote, w.Code, w.Body, tc.want)
		}
		if tc.want == http.StatusForbidden && decode[errorBody](t, w).Code != "not_a_member" {
			t.Fatalf("from %s: %s", tc.remote, w.Body)
		}
	}
	if after := ts.node.AppliedIndex(); after != before {
		t.Fatalf("applied index moved from %d to %d", before, after)
	}
}
