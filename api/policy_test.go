package api

import (
	"net/http"
	"testing"
	"time"
)

// Operators set the region policy through the admin API; fields left out
// keep their value, bad values are refused with a clear error and change
// nothing, and issued codes follow the new lifetime.
func TestPolicyAPI(t *testing.T) {
	ts := newTestServer(t, func() time.Time { return time.Unix(1795867700, 0) })
	w := ts.admin(http.MethodGet, "/v1/admin/policy", nil)
	if got := decode[PolicyView](t, w); w.Code != http.StatusOK || !got.Set || !got.NoPadding || got.Retention != "336h0m0s" {
		t.Fatalf("policy of a new region: %d %+v", w.Code, got)
	}
	w = ts.admin(http.MethodPut, "/v1/admin/policy", PolicyRequest{CodeTTL: "15m"})
	want := PolicyView{Retention: "336h0m0s", CodeTTL: "15m0s", SealPaddingJitter: 100, NoPadding: true,
		SMSPerHour: 1000, SMSPerNumberPerDay: 3, CodesPerProviderPerDay: 5000, Set: true}
	if got := decode[PolicyView](t, w); w.Code != http.StatusOK || got != want {
		t.Fatalf("set code lifetime: %d %+v, want %+v", w.Code, got, want)
	}
	zero := uint32(0)
	for name, bad := range map[string]any{
		"unknown field":                      map[string]any{"retension": "1h"},
		"not a duration":                     PolicyRequest{Retention: "two weeks"},
		"retention too long":                 PolicyRequest{Retention: "9000h"},
		"zero padding":                       PolicyRequest{SealMinKeys: &zero},
		"an SMS quota of a million a number": PolicyRequest{SMSPerNumberPerDay: 1_000_000},
	} {
		w := ts.admin(http.MethodPut, "/v1/admin/policy", bad)
		if body := decode[errorBody](t, w); w.Code != http.StatusBadRequest || body.Error == "" {
			t.Errorf("%s: %d %+v", name, w.Code, body)
		}
	}
	if got := decode[PolicyView](t, ts.admin(http.MethodGet, "/v1/admin/policy", nil)); got != want {
		t.Fatalf("policy after refused changes: %+v, want %+v", got, want)
	}
	w = ts.do(http.MethodPost, "/v1/codes", []byte(`{}`), map[string]string{"Authorization": "Bearer " + newProvider(t, ts, "c1"), "Content-Type": "application/json"})
	code := decode[CodeResponse](t, w)
	if w.Code != http.StatusOK || code.ExpiresAt.Sub(code.IssuedAt) != 15*time.Minute {
		t.Fatalf("code under the new policy: %d %+v", w.Code, code)
	}
}
