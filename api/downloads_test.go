package api

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/feed/feedpb"
)

// downloadServer is a node with the golden upload published and sealed.
func downloadServer(t *testing.T) (*testServer, *ecdsa.PrivateKey) {
	t.Helper()
	return downloadServerConfig(t, Config{})
}

// downloadServerConfig is downloadServer with cfg's limits and proxies
// (its clock stands still, so no rate limit refills).
func downloadServerConfig(t *testing.T, cfg Config) (*testServer, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = func() time.Time { return time.Unix(1795867700, 0) }
	cfg.Feed = feed.Config{Region: "test", SigningKeys: []export.SigningKey{{Private: key, KeyID: "310", KeyVersion: "v1"}}}
	ts := newTestServerConfig(t, cfg)
	registerGoldenAuthority(t, ts)
	if w := ts.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	if w := ts.admin(http.MethodPost, "/v1/admin/seal", nil); w.Code != http.StatusOK {
		t.Fatalf("seal: %d %s", w.Code, w.Body)
	}
	return ts, key
}

// The index lists the roll-up; the file decodes and verifies with the
// region's public key and holds the published keys; conditional requests
// get 304; an unknown name is 404.
func TestExportIndexAndFiles(t *testing.T) {
	ts, key := downloadServer(t)
	w := ts.do(http.MethodGet, "/v1/exports/index.txt", nil, nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Cache-Control"), "public, max-age=300") {
		t.Fatalf("index: %d %v", w.Code, w.Header())
	}
	names := strings.Split(w.Body.String(), "\n")
	if len(names) != 1 || !strings.HasPrefix(names[0], "v1/exports/day/") {
		t.Fatalf("index lists %q", names)
	}
	f := ts.do(http.MethodGet, "/"+names[0], nil, nil)
	if f.Code != http.StatusOK || !strings.Contains(f.Header().Get("Cache-Control"), "immutable") || f.Header().Get("ETag") == "" {
		t.Fatalf("file: %d %v", f.Code, f.Header())
	}
	d, err := export.Decode(f.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(&key.PublicKey, "310", "v1"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if d.File.Region != "test" || len(d.File.Keys) != 14 {
		t.Fatalf("file holds region %q, %d keys", d.File.Region, len(d.File.Keys))
	}
	again := ts.do(http.MethodGet, "/"+names[0], nil, map[string]string{"If-None-Match": f.Header().Get("ETag")})
	if again.Code != http.StatusNotModified {
		t.Fatalf("conditional request: %d", again.Code)
	}
	batches := ts.do(http.MethodGet, "/v1/exports/batches.txt", nil, nil)
	if b := ts.do(http.MethodGet, "/"+batches.Body.String(), nil, nil); b.Code != http.StatusOK {
		t.Fatalf("batch file %q: %d", batches.Body.String(), b.Code)
	}
	for _, bad := range []string{"/v1/exports/1-2-00001.zip", "/v1/exports/day/86400-90000-00001.zip", "/v1/exports/nonsense.zip"} {
		if w := ts.do(http.MethodGet, bad, nil, nil); w.Code != http.StatusNotFound {
			t.Fatalf("%s: %d", bad, w.Code)
		}
	}
}

// The delta feed answers protobuf by default and JSON on request, with the
// next cursor; a cursor at the newest batch is empty; bad cursors are 400.
func TestKeyFeed(t *testing.T) {
	ts, _ := downloadServer(t)
	w := ts.do(http.MethodGet, "/v1/keys", nil, nil)
	var full feedpb.KeyFeed
	if err := proto.Unmarshal(w.Body.Bytes(), &full); err != nil || w.Code != http.StatusOK {
		t.Fatalf("full feed: %d %v", w.Code, err)
	}
	if !full.GetFull() || full.GetUntil() != 1 || len(full.GetAdded()) != 14 || w.Header().Get("X-Next-Cursor") != "1" {
		t.Fatalf("full feed: full=%v until=%d added=%d", full.GetFull(), full.GetUntil(), len(full.GetAdded()))
	}
	j := ts.do(http.MethodGet, "/v1/keys?since=0", nil, map[string]string{"Accept": "application/json"})
	var asJSON map[string]any
	if err := json.Unmarshal(j.Body.Bytes(), &asJSON); err != nil || j.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("json feed: %v %v", err, j.Header())
	}
	if added, _ := asJSON["added"].([]any); len(added) != 14 {
		t.Fatalf("json feed added %d keys", len(added))
	}
	var empty feedpb.KeyFeed
	e := ts.do(http.MethodGet, "/v1/keys?since=1&until=1", nil, nil)
	if err := proto.Unmarshal(e.Body.Bytes(), &empty); err != nil || len(empty.GetAdded()) != 0 || !strings.Contains(e.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("empty delta: %v %d %v", err, len(empty.GetAdded()), e.Header())
	}
	for _, q := range []string{"since=abc", "since=-1", "since=7", "until=0", "since=1&until=9"} {
		if w := ts.do(http.MethodGet, "/v1/keys?"+q, nil, nil); w.Code != http.StatusBadRequest || decode[errorBody](t, w).Code != "bad_cursor" {
			t.Fatalf("%s: %d %s", q, w.Code, w.Body)
		}
	}
}

// HEAD works on every download route with the headers of GET and no body.
func TestHeadOnDownloads(t *testing.T) {
	ts, _ := downloadServer(t)
	index := ts.do(http.MethodGet, "/v1/exports/index.txt", nil, nil).Body.String()
	batches := ts.do(http.MethodGet, "/v1/exports/batches.txt", nil, nil).Body.String()
	paths := []string{"/v1/exports/index.txt", "/v1/exports/batches.txt", "/" + index, "/" + batches,
		"/v1/keys", "/v1/keys?since=0&until=1", "/v1/regions/test/exports/index.txt"}
	for _, p := range paths {
		get := ts.do(http.MethodGet, p, nil, nil)
		head := ts.do(http.MethodHead, p, nil, nil)
		if get.Code != http.StatusOK || head.Code != http.StatusOK || head.Body.Len() != 0 {
			t.Fatalf("%s: GET %d, HEAD %d with %d body bytes", p, get.Code, head.Code, head.Body.Len())
		}
		for _, h := range []string{"Content-Type", "Content-Length", "ETag", "Cache-Control", "X-Next-Cursor"} {
			if get.Header().Get(h) != head.Header().Get(h) {
				t.Errorf("%s: %s is %q on GET, %q on HEAD", p, h, get.Header().Get(h), head.Header().Get(h))
			}
		}
	}
}

// The lists go gzip-compressed to a client that accepts it (as both phone
// platforms' HTTP stacks do), with an ETag of their own and Vary, and as
// they are to one that does not; the compressed bytes unpack to the list.
func TestListsGzipped(t *testing.T) {
	ts, _ := downloadServer(t)
	for _, list := range []string{"/v1/exports/index.txt", "/v1/exports/batches.txt"} {
		plain := ts.do(http.MethodGet, list, nil, nil)
		for _, tc := range []struct {
			accept string
			gzip   bool
		}{{"gzip", true}, {"br, gzip;q=0.5", true}, {"*", true}, {"x-gzip", true}, {"GZIP ; q=1.0", true},
			{"gzip;q=0", false}, {"gzip;q=0, *", false}, {"*;q=0", false}, {"identity", false}, {"", false}} {
			w := ts.do(http.MethodGet, list, nil, map[string]string{"Accept-Encoding": tc.accept})
			body := w.Body.Bytes()
			if got := w.Header().Get("Content-Encoding") == "gzip"; got != tc.gzip || w.Header().Get("Vary") != "Accept-Encoding" {
				t.Fatalf("%s, Accept-Encoding %q: gzip %v, want %v (%v)", list, tc.accept, got, tc.gzip, w.Header())
			}
			if tc.gzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if w.Header().Get("ETag") == plain.Header().Get("ETag") {
					t.Fatalf("%s: the gzip form has the ETag of the plain one", list)
				}
			}
			if !bytes.Equal(body, plain.Body.Bytes()) || len(body) == 0 {
				t.Fatalf("%s, Accept-Encoding %q: %q, want %q", list, tc.accept, body, plain.Body.Bytes())
			}
			again := ts.do(http.MethodGet, list, nil, map[string]string{"Accept-Encoding": tc.accept, "If-None-Match": w.Header().Get("ETag")})
			if again.Code != http.StatusNotModified {
				t.Fatalf("%s, Accept-Encoding %q: conditional request %d", list, tc.accept, again.Code)
			}
		}
	}
}
