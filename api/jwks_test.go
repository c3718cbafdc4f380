package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/jwks"
	"github.com/covid-backend/covid-backend/publish"
)

// jwkOf is a P-256 key as a JWK.
func jwkOf(key *ecdsa.PrivateKey, kid string) map[string]string {
	pub, _ := key.PublicKey.ECDH()
	raw := pub.Bytes()
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])}
}

// A health authority registered by its JWKS URL: the node fetches the set
// at once (a URL that serves no key set is refused, 422, nothing stored),
// uploads under its key publish; the set rotated, a refresh makes the new
// key verify, and the old one stops once its grace is over.
func TestAuthorityFromJWKS(t *testing.T) {
	ts := newTestServerConfig(t, Config{JWKS: jwks.Fetcher{Client: http.DefaultClient, AllowHTTP: true}})
	v1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var mu sync.Mutex
	served := []map[string]string{jwkOf(v1, "v1")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			w.Write([]byte("<html>not a key set</html>"))
			return
		}
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"keys": served})
	}))
	defer srv.Close()
	ha := Authority{Issuer: "ha.example", Audience: "aud", AppIDs: []string{"app.example"}, JWKSURL: srv.URL + "/jwks", JWKSGraceSeconds: 3600}
	if w := ts.admin(http.MethodPost, "/v1/admin/authorities", ha); w.Code != http.StatusOK {
		t.Fatalf("register by JWKS: %d %s", w.Code, w.Body)
	}
	bad := ha
	bad.Issuer, bad.JWKSURL = "bad.example", srv.URL+"/page"
	if w := ts.admin(http.MethodPost, "/v1/admin/authorities", bad); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("a URL of no key set: %d %s", w.Code, w.Body)
	}
	if _, ok := ts.node.FSM().Authority("bad.example"); ok {
		t.Fatal("a refused authority was stored")
	}
	upload := func(key *ecdsa.PrivateKey, kid string) int {
		t.Helper()
		req, err := publish.Signer{Key: key, Issuer: "ha.example", Audience: "aud", Kid: kid, AppID: "app.example"}.RandomUpload(3, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ts.do(http.MethodPost, "/v1/publish", req, jsonCT).Code
	}
	if status := upload(v1, "v1"); status != http.StatusOK {
		t.Fatalf("an upload under the JWKS's key: %d", status)
	}
	mu.Lock()
	served = []map[string]string{jwkOf(v2, "v2")}
	mu.Unlock()
	fetch := jwks.Fetcher{Client: http.DefaultClient, AllowHTTP: true}.Fetch
	// The rotation seen two hours ago: v1's hour of grace is over.
	if err := jwks.Refresh(context.Background(), ts.node, ts.node.FSM().Authorities(), ts.node.FSM().Authority, fetch, time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if status := upload(v2, "v2"); status != http.StatusOK {
		t.Errorf("an upload under the new key: %d", status)
	}
	if status := upload(v1, "v1"); status != http.StatusUnauthorized {
		t.Errorf("an upload under the key gone from the set, past its grace: %d, want 401", status)
	}
}
