package api

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
	"github.com/covid-backend/covid-backend/node"
)

// stateOnly is a region of the state machine alone, no raft
// (fsmtest.Region). Beyond writes and reads it answers as a ready leader
// alone; anything else the API might ask is not there (the embedded Region
// is nil, and a call to it fails the test with a panic).
type stateOnly struct {
	Region
	writes *fsmtest.Region
}

func newStateOnly(now func() time.Time) *stateOnly { return &stateOnly{writes: fsmtest.New(now)} }

// stateOnlyServer runs the API, its clock at the golden upload's time, on
// a region of the state machine alone.
func stateOnlyServer(t *testing.T) (*testServer, *stateOnly) {
	t.Helper()
	golden := func() time.Time { return time.Unix(1795867700, 0) }
	region := newStateOnly(golden)
	srv, err := New(Config{Now: golden, AdminToken: testToken}, region)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{t: t, srv: srv, h: srv.Handler()}, region
}

func (s *stateOnly) Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	return s.writes.Apply(ctx, cmd)
}

func (s *stateOnly) FSM() *fsm.FSM                        { return s.writes.State }
func (s *stateOnly) Config() node.Config                  { return node.Config{ID: "n1", Region: "test"} }
func (s *stateOnly) CheckDisk() error                     { return nil }
func (s *stateOnly) Policy() (*fsmpb.Policy, bool)        { return s.writes.State.Policy() }
func (s *stateOnly) ConsistentRead(context.Context) error { return nil }
func (s *stateOnly) CatchUp(context.Context) error        { return nil }
func (s *stateOnly) Ready() bool                          { return true }
func (s *stateOnly) Admitted() bool                       { return true }
func (s *stateOnly) IsLeader() bool                       { return true }
func (s *stateOnly) MemberListener() net.Listener         { return nil }
func (s *stateOnly) Collectors() []prometheus.Collector   { return nil }

// The app API runs on the state machine alone: the API reads state and
// writes through Region, and nothing of raft is needed to test what it
// translates. The reference client's golden upload is accepted once, its
// keys are in the state, and a resend is answered as the first was.
func TestAPIOnStateAlone(t *testing.T) {
	ts, region := stateOnlyServer(t)
	registerGoldenAuthority(t, ts)
	first := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT)
	if first.Code != http.StatusOK {
		t.Fatalf("publish: %d %s", first.Code, first.Body)
	}
	keys := region.FSM().NumKeys()
	if keys == 0 {
		t.Fatal("no key in the state after an accepted upload")
	}
	again := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT)
	if again.Code != http.StatusOK || region.FSM().NumKeys() != keys {
		t.Fatalf("resend: %d %s, %d keys (first %d)", again.Code, again.Body, region.FSM().NumKeys(), keys)
	}
}
