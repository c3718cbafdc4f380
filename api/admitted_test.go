package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/node"
)

// A node that has not caught up to its own admission (here: not
// bootstrapped, waiting to be added) answers uploads and code requests
// with 503 and Retry-After, never 401: it does not know the region's
// authorities and keys yet, so it cannot tell a valid client from a wrong
// one.
func TestNotAdmittedNodeAnswers503(t *testing.T) {
	n, err := node.Open(context.Background(), node.Config{
		ID: "n9", Region: "test", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		AdminToken: testToken, WriteTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	srv, err := New(Config{AdminToken: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, body, want string }{
		{"/v1/publish", `{"temporaryExposureKeys":[]}`, `"code":"internal_error"`},
		{"/v1/codes", `{}`, `"code":"not_ready"`},
	} {
		req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer whatever")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
			!strings.Contains(w.Body.String(), "catching up") || !strings.Contains(w.Body.String(), tc.want) {
			t.Fatalf("%s on a node not yet admitted: %d %q %s", tc.path, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
}
