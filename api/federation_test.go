package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/federation"
)

// The trust store refuses keys that are not Ed25519; an import of garbage
// or from an untrusted origin is a 422 naming the reason.
func TestTrustAndImportInput(t *testing.T) {
	ts := newTestServer(t, time.Now)
	_, pub, err := federation.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		body TrustRequest
		want int
	}{
		{"ok", TrustRequest{Region: "A", KeyID: "a1", PublicKeyPEM: string(pub), Serve: true}, http.StatusOK},
		{"not a key", TrustRequest{Region: "A", KeyID: "a1", PublicKeyPEM: "nope"}, http.StatusBadRequest},
		{"no key id", TrustRequest{Region: "A", PublicKeyPEM: string(pub)}, http.StatusBadRequest},
		{"bad region name", TrustRequest{Region: "no spaces", KeyID: "a1", PublicKeyPEM: string(pub)}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		if w := ts.admin(http.MethodPost, "/v1/admin/trust", tc.body); w.Code != tc.want {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	w := ts.admin(http.MethodPost, "/v1/admin/federation/import", []byte("garbage"))
	if w.Code != http.StatusUnprocessableEntity || decode[errorBody](t, w).Code != "bad_batch" {
		t.Fatalf("garbage import: %d %s", w.Code, w.Body)
	}
	if w := ts.do(http.MethodGet, "/v1/federation/batches/A/1", nil, nil); w.Code != http.StatusNotFound {
		t.Fatalf("unknown batch: %d", w.Code)
	}
	if w := ts.do(http.MethodGet, "/v1/federation/batches/test/1", nil, nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("own batch without a signing key: %d", w.Code)
	}
	if w := ts.admin(http.MethodDelete, "/v1/admin/trust/Z", nil); w.Code != http.StatusNotFound {
		t.Fatalf("remove unknown region: %d", w.Code)
	}
}

// The admin import takes a batch up to the documented 32 MiB (a larger
// body is 413), and other admin requests up to 1 MiB.
func TestImportBodyLimit(t *testing.T) {
	ts := newTestServer(t, time.Now)
	big := make([]byte, 2<<20)
	if w := ts.admin(http.MethodPost, "/v1/admin/federation/import", big); w.Code == http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 MiB batch was cut: %d %s", w.Code, w.Body)
	}
	huge := make([]byte, 33<<20)
	if w := ts.admin(http.MethodPost, "/v1/admin/federation/import", huge); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 33 MiB batch: %d, want 413", w.Code)
	}
	if w := ts.admin(http.MethodPut, "/v1/admin/policy", big); w.Code == http.StatusOK {
		t.Fatalf("a 2 MiB policy change: %d", w.Code)
	}
}

// The own batches are signed once each, and the newest are kept.
func TestSignedCache(t *testing.T) {
	var c signedCache
	signs := 0
	sign := func(seq uint32) func() ([]byte, bool) {
		return func() ([]byte, bool) { signs++; return []byte{byte(seq)}, true }
	}
	for range 3 {
		if b, ok := c.get(7, sign(7)); !ok || b[0] != 7 {
			t.Fatalf("batch 7: %v %v", b, ok)
		}
	}
	if signs != 1 {
		t.Fatalf("batch 7 signed %d times", signs)
	}
	for seq := range uint32(maxSignedCached + 10) {
		c.get(seq+100, sign(seq+100))
	}
	if len(c.bySeq) != maxSignedCached || len(c.order) != maxSignedCached {
		t.Fatalf("%d batches kept, want %d", len(c.bySeq), maxSignedCached)
	}
	if _, ok := c.get(1, func() ([]byte, bool) { return nil, false }); ok {
		t.Fatal("a batch that does not exist was served")
	}
}
