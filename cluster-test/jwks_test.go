package clustertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// A health authority registered by its JWKS URL, served over HTTPS under a
// private CA (--jwks-ca-file): every node admits uploads under its key;
// the key rotated at the URL, every node admits uploads under the new one
// once the leader has fetched the set again (--jwks-interval 1s), and the
// key gone from it no longer once its grace is over.
func TestJWKSRotationAcrossNodes(t *testing.T) {
	v1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := func(key *ecdsa.PrivateKey, kid string) map[string]string {
		pub, _ := key.PublicKey.ECDH()
		raw := pub.Bytes()
		return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
			"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])}
	}
	var mu sync.Mutex
	served := []map[string]string{jwk(v1, "v1")}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"keys": served})
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "jwks-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	_, exportFlags := exportKey(t, t.TempDir())
	c := newCluster(t, append(exportFlags, "--jwks-ca-file", caFile, "--jwks-interval", "1s")...)
	c.form(3)
	c.cli("ha", "add", "--addr", c.node("n2").url(), "--issuer", "jwks.example", "--audience", "aud", "--app", "app.example",
		"--jwks-url", srv.URL+"/jwks", "--jwks-grace", "1s")
	upload := func(id string, key *ecdsa.PrivateKey, kid string) error {
		req, err := publish.Signer{Key: key, Issuer: "jwks.example", Audience: "aud", Kid: kid, AppID: "app.example"}.RandomUpload(3, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.publishRequestFor(c.node(id).url(), req, 5*time.Second)
		return err
	}
	for _, id := range c.ids(3) {
		if err := upload(id, v1, "v1"); err != nil {
			t.Fatalf("an upload under the JWKS's key through %s: %v", id, err)
		}
	}
	mu.Lock()
	served = []map[string]string{jwk(v2, "v2")}
	mu.Unlock()
	for _, id := range c.ids(3) {
		c.waitFor(id+" to admit the rotated key", 20*time.Second, func() bool { return upload(id, v2, "v2") == nil })
	}
	for _, id := range c.ids(3) {
		c.waitFor(id+" to refuse the key gone from the set", 20*time.Second, func() bool { return upload(id, v1, "v1") != nil })
	}
}
