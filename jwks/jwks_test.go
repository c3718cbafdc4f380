package jwks_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
	"github.com/covid-backend/covid-backend/jwks"
)

// ecJWK is a P-256 key as a JWK, and its PKIX DER.
func ecJWK(t *testing.T, kid string) (map[string]string, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	pub, _ := key.PublicKey.ECDH()
	raw := pub.Bytes() // 0x04 || X || Y
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])}, der
}

func set(keys ...map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// A set's ES256 keys are read by kid; keys of other types are left out;
// a point off the curve, a key without a kid, two of one kid or a set
// without an ES256 key are refused.
func TestParse(t *testing.T) {
	k1, der1 := ecJWK(t, "v1")
	rsa := map[string]string{"kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB"}
	keys, err := jwks.Parse(set(k1, rsa))
	if err != nil || len(keys) != 1 || keys[0].Kid != "v1" || !bytes.Equal(keys[0].DER, der1) {
		t.Fatalf("parse: %v %v", keys, err)
	}
	off := map[string]string{"kty": "EC", "crv": "P-256", "kid": "bad", "x": k1["x"], "y": k1["x"]}
	noKid := map[string]string{"kty": "EC", "crv": "P-256", "x": k1["x"], "y": k1["y"]}
	for name, doc := range map[string][]byte{
		"a point off the curve": set(off), "no kid": set(noKid), "two of one kid": set(k1, k1),
		"no ES256 key": set(rsa), "not JSON": []byte("<html>"),
	} {
		if _, err := jwks.Parse(doc); err == nil {
			t.Errorf("%s: read", name)
		}
	}
}

// A set is fetched over HTTPS, at most MaxSize bytes, following
// redirects only on its own host; plain HTTP only where allowed.
func TestFetch(t *testing.T) {
	k1, _ := ecJWK(t, "v1")
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(set(k1)) }))
	defer other.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks":
			w.Write(set(k1))
		case "/moved":
			http.Redirect(w, r, "/jwks", http.StatusFound)
		case "/downgrade":
			http.Redirect(w, r, "http://"+r.Host+"/jwks", http.StatusFound)
		case "/elsewhere":
			http.Redirect(w, r, other.URL+"/jwks", http.StatusFound)
		case "/huge":
			w.Write(bytes.Repeat([]byte(" "), 10<<20))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := jwks.Fetcher{Client: srv.Client()}
	for _, path := range []string{"/jwks", "/moved"} {
		if keys, err := f.Fetch(context.Background(), srv.URL+path); err != nil || len(keys) != 1 {
			t.Errorf("%s: %v", path, err)
		}
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(set(k1)) }))
	defer plain.Close()
	for name, url := range map[string]string{"10 MB": srv.URL + "/huge", "a redirect to another host": srv.URL + "/elsewhere", "a redirect to plain HTTP": srv.URL + "/downgrade",
		"not found": srv.URL + "/nothing", "plain HTTP": plain.URL + "/jwks", "no URL": "::"} {
		if _, err := f.Fetch(context.Background(), url); err == nil {
			t.Errorf("%s: fetched", name)
		}
	}
	if _, err := (jwks.Fetcher{Client: plain.Client(), AllowHTTP: true}).Fetch(context.Background(), plain.URL+"/jwks"); err != nil {
		t.Errorf("plain HTTP where allowed: %v", err)
	}
}

// The keys after a fetch: new ones join, a key gone ends a grace after
// now (or sooner, if it ended already), a kid with another key takes it;
// nothing else is a change.
func TestNext(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	grace := time.Hour
	key := func(kid, der string, from, through int64) *fsmpb.AuthorityKey {
		return &fsmpb.AuthorityKey{Kid: kid, PublicKeyDer: []byte(der), ValidFromUnix: from, ValidThroughUnix: through}
	}
	for _, tc := range []struct {
		name    string
		current []*fsmpb.AuthorityKey
		fetched []jwks.Key
		want    []*fsmpb.AuthorityKey
		changed bool
	}{
		{"the same set", []*fsmpb.AuthorityKey{key("v1", "a", 5, 0)}, []jwks.Key{{"v1", []byte("a")}}, []*fsmpb.AuthorityKey{key("v1", "a", 5, 0)}, false},
		{"a key added", []*fsmpb.AuthorityKey{key("v1", "a", 0, 0)}, []jwks.Key{{"v2", []byte("b")}, {"v1", []byte("a")}},
			[]*fsmpb.AuthorityKey{key("v1", "a", 0, 0), key("v2", "b", 0, 0)}, true},
		{"a key gone", []*fsmpb.AuthorityKey{key("v1", "a", 0, 0), key("v2", "b", 0, 0)}, []jwks.Key{{"v2", []byte("b")}},
			[]*fsmpb.AuthorityKey{key("v1", "a", 0, now.Add(grace).Unix()), key("v2", "b", 0, 0)}, true},
		{"a key gone and ending already", []*fsmpb.AuthorityKey{key("v1", "a", 0, now.Unix()+60), key("v2", "b", 0, 0)}, []jwks.Key{{"v2", []byte("b")}},
			[]*fsmpb.AuthorityKey{key("v1", "a", 0, now.Unix()+60), key("v2", "b", 0, 0)}, false},
		{"a kid with another key", []*fsmpb.AuthorityKey{key("v1", "a", 0, 0)}, []jwks.Key{{"v1", []byte("z")}}, []*fsmpb.AuthorityKey{key("v1", "z", 0, 0)}, true},
		{"a key back in the set", []*fsmpb.AuthorityKey{key("v1", "a", 0, now.Unix()+60)}, []jwks.Key{{"v1", []byte("a")}}, []*fsmpb.AuthorityKey{key("v1", "a", 0, 0)}, true},
	} {
		got, changed := jwks.Next(tc.current, tc.fetched, now, grace)
		if changed != tc.changed || len(got) != len(tc.want) {
			t.Errorf("%s: %v changed %v, want %v changed %v", tc.name, got, changed, tc.want, tc.changed)
			continue
		}
		for i := range got {
			if got[i].String() != tc.want[i].String() {
				t.Errorf("%s: key %d %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}

// counting counts the commands an applier takes.
type counting struct {
	command.Applier
	n int
}

func (c *counting) Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	c.n++
	return c.Applier.Apply(ctx, cmd)
}

// Refresh commits a rotated set as one PUT_AUTHORITY (the new key
// verifies, the old one ends a grace later), commits nothing for a set
// that did not change, and keeps the keys when the set cannot be fetched.
func TestRefresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	region := fsmtest.New(func() time.Time { return now })
	applier := &counting{Applier: region}
	k1, der1 := ecJWK(t, "v1")
	k2, der2 := ecJWK(t, "v2")
	ctx := context.Background()
	if err := command.PutAuthority(ctx, region, &fsmpb.Authority{Issuer: "ha", Audience: "aud", AppIds: []string{"app"},
		JwksUrl: "https://ha.example/jwks", JwksGraceSeconds: 600, Keys: []*fsmpb.AuthorityKey{{Kid: "v1", PublicKeyDer: der1}}}); err != nil {
		t.Fatal(err)
	}
	served := set(k1, k2)
	fetch := func(ctx context.Context, url string) ([]jwks.Key, error) {
		if served == nil {
			return nil, context.DeadlineExceeded
		}
		return jwks.Parse(served)
	}
	if err := jwks.Refresh(ctx, applier, region.State.Authorities(), region.State.Authority, fetch, now); err != nil || applier.n != 1 {
		t.Fatalf("refresh with a key added: %v, %d commands", err, applier.n)
	}
	served = set(k2)
	if err := jwks.Refresh(ctx, applier, region.State.Authorities(), region.State.Authority, fetch, now); err != nil || applier.n != 2 {
		t.Fatalf("refresh with a key gone: %v, %d commands", err, applier.n)
	}
	a, _ := region.State.Authority("ha")
	if len(a.GetKeys()) != 2 || a.GetKeys()[0].GetValidThroughUnix() != now.Unix()+600 || !bytes.Equal(a.GetKeys()[1].GetPublicKeyDer(), der2) ||
		a.GetJwksUrl() != "https://ha.example/jwks" {
		t.Fatalf("the authority after the rotation: %v", a)
	}
	if err := jwks.Refresh(ctx, applier, region.State.Authorities(), region.State.Authority, fetch, now); err != nil || applier.n != 2 {
		t.Fatalf("refresh of the same set: %v, %d commands", err, applier.n)
	}
	// An operator changed the authority while its set was fetched: the
	// refresh leaves it as the operator left it.
	stale := region.State.Authorities()
	served = set(k1, k2)
	changed, _ := region.State.Authority("ha")
	changed.Audience = "new audience"
	if err := command.PutAuthority(ctx, region, changed); err != nil {
		t.Fatal(err)
	}
	if err := jwks.Refresh(ctx, applier, stale, region.State.Authority, fetch, now); err != nil || applier.n != 2 {
		t.Fatalf("a refresh of an authority changed meanwhile: %v, %d commands", err, applier.n)
	}
	if a, _ := region.State.Authority("ha"); a.GetAudience() != "new audience" {
		t.Fatalf("the refresh undid the operator's change: %v", a)
	}
	served = nil
	if err := jwks.Refresh(ctx, applier, region.State.Authorities(), region.State.Authority, fetch, now); err == nil || !strings.Contains(err.Error(), `"ha"`) || applier.n != 2 {
		t.Fatalf("a set that cannot be fetched: %v, %d commands", err, applier.n)
	}
}
