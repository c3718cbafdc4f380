package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/portal"
)

const testToken = "test-admin-token-0123456789"

// testServer is one real single-node region (bolt on disk, raft over TCP
// on loopback) behind the API's handler.
type testServer struct {
	t    *testing.T
	node *node.Node
	srv  *Server
	h    http.Handler
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newTestServer(t *testing.T, now func() time.Time) *testServer {
	t.Helper()
	return newTestServerWith(t, now, feed.Config{})
}

func newTestServerWith(t *testing.T, now func() time.Time, fc feed.Config) *testServer {
	t.Helper()
	return newTestServerConfig(t, Config{Now: now, Feed: fc})
}

// newTestServerConfig runs the API with cfg (admin token and logger set
// here) on a new single-node region.
func newTestServerConfig(t *testing.T, cfg Config) *testServer {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	n, err := node.Open(context.Background(), node.Config{
		ID: "n1", Region: "test", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Bootstrap: true, AdminToken: testToken, WriteTimeout: 5 * time.Second, Logger: logger,
		Policy: &fsmpb.Policy{NoPadding: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	cfg.AdminToken, cfg.Logger = testToken, logger
	if cfg.Verification != nil {
		cfg.Mounts = append(cfg.Mounts, portalBeside(n)) // as covid-node serve mounts it
	}
	srv, err := New(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, node: n, srv: srv, h: srv.Handler()}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() || !n.Ready() || !policySet(n) {
		if time.Now().After(deadline) {
			t.Fatal("single node did not become leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ts
}

func policySet(n *node.Node) bool {
	_, set := n.FSM().Policy()
	return set
}

// do sends a request; body may be nil, a []byte or a value to encode.
func (ts *testServer) do(method, path string, body any, header map[string]string) *httptest.ResponseRecorder {
	ts.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		r = bytes.NewReader(enc)
	}
	req := httptest.NewRequest(method, path, r)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, req)
	return w
}

func (ts *testServer) admin(method, path string, body any) *httptest.ResponseRecorder {
	return ts.do(method, path, body, map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"})
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
	return v
}

// portalBeside mounts the web portal on the API port, sharing the API's
// issuer, as covid-node serve does.
func portalBeside(n *node.Node) Mount {
	return func(r gin.IRouter, shared Shared) error {
		p, err := portal.New(portal.Config{SessionKey: portal.SessionKey(shared.CodeKeys[0]), CodeKeys: shared.CodeKeys, SMS: shared.Issuer.SMS(), Region: "test"}, n, shared.Issuer)
		if err != nil {
			return err
		}
		p.Routes(r)
		return nil
	}
}

// auditOf returns the newest n audit events of a provider ("*": all).
func auditOf(ts *testServer, provider string, n int) []*fsmpb.AuditEvent {
	ev, _ := ts.node.FSM().Audit(fsm.AuditQuery{Provider: provider, Limit: n})
	return ev
}
