package outbound_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/outbound"
)

// A read is refused, and nothing returned, for plain HTTP unless allowed,
// a body over the limit, a redirect to another host, and an answer other
// than 200; within the bounds the body comes back whole.
func TestGet(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("elsewhere")) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("0123456789"))
		case "/same-host":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/other-host":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name      string
		path      string
		allowHTTP bool
		limit     int64
		want      string // the body, or a part of the error
	}{
		{"within bounds", "/ok", true, 10, "0123456789"},
		{"a redirect on the same host", "/same-host", true, 10, "0123456789"},
		{"plain http", "/ok", false, 10, "want an https URL"},
		{"over the limit", "/ok", true, 9, "larger than 9 bytes"},
		{"another host", "/other-host", true, 10, "another host"},
		{"not found", "/missing", true, 10, "answered 404"},
	} {
		body, err := outbound.Get(context.Background(), srv.Client(), srv.URL+tc.path, tc.allowHTTP, tc.limit, "")
		got := string(body)
		if err != nil {
			got = err.Error()
			if body != nil {
				t.Fatalf("%s: a body with an error", tc.name)
			}
		}
		if !strings.Contains(got, tc.want) || err == nil && got != tc.want {
			t.Fatalf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
