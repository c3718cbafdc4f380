package efgs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// fakeGateway answers a client as EFGS did, from a script: uploads get
// the statuses in order; downloads are the batches by tag, each day's
// first asked without a tag.
type fakeGateway struct {
	t        *testing.T
	mu       sync.Mutex
	statuses []int
	uploads  []*efgspb.DiagnosisKeyBatch
	tags     []string
	batches  map[string]efgs.Batch // by tag
	first    map[string]string     // a day's first tag
	asked    []string              // "date tag" of each download
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/efgs/diagnosiskeys/upload":
		body, _ := io.ReadAll(r.Body)
		batch := &efgspb.DiagnosisKeyBatch{}
		if r.Header.Get("Content-Type") != efgs.ContentType || proto.Unmarshal(body, batch) != nil {
			http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
			return
		}
		if _, err := efgs.VerifyBatch(batch.GetKeys(), r.Header.Get("batchSignature"), time.Now()); err != nil || r.Header.Get("batchTag") != efgs.Tag(body) {
			http.Error(w, `{"message":"Invalid signature"}`, http.StatusBadRequest)
			return
		}
		g.uploads, g.tags = append(g.uploads, batch), append(g.tags, r.Header.Get("batchTag"))
		status := g.statuses[0]
		g.statuses = g.statuses[1:]
		w.WriteHeader(status)
		if status == http.StatusMultiStatus {
			w.Write([]byte(`{"201":[0,2,4],"409":[1],"500":[3]}`))
		}
	case r.Method == http.MethodGet && len(r.URL.Path) == len("/efgs/diagnosiskeys/download/2026-12-04"):
		date := r.URL.Path[len(r.URL.Path)-10:]
		tag := r.Header.Get("batchTag")
		g.asked = append(g.asked, date+" "+tag)
		if tag == "" {
			tag = g.first[date]
		}
		b, ok := g.batches[tag]
		if day, _ := efgs.TagDay(tag); !ok || day.Format(time.DateOnly) < date {
			http.NotFound(w, r)
			return
		}
		body, _ := proto.Marshal(&efgspb.DiagnosisKeyBatch{Keys: b.Keys})
		next := b.Next
		if next == "" {
			next = "null"
		}
		w.Header().Set("batchTag", b.Tag)
		w.Header().Set("nextBatchTag", next)
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

func client(t *testing.T, url string) *efgs.Client {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &efgs.Client{Base: url + "/efgs", HTTP: http.DefaultClient, Country: "DE", Cert: signingCert(t, key, "DE"), Key: key}
}

// A 207 stored nothing: the client sends the keys the gateway could
// insert and those that failed again, re-signed under their own tag, and
// leaves out those it holds; the same upload sent again is answered 409
// and counts as stored.
func TestClientUploadAfter207(t *testing.T) {
	g := &fakeGateway{t: t, statuses: []int{http.StatusMultiStatus, http.StatusCreated, http.StatusConflict}}
	srv := httptest.NewServer(g)
	defer srv.Close()
	c := client(t, srv.URL)
	keys := freshKeys(5, "DE", time.Now())
	stored, err := c.Upload(context.Background(), keys)
	if err != nil || len(stored) != 1 || len(g.uploads) != 2 {
		t.Fatalf("upload: %v, stored under %v, %d requests", err, stored, len(g.uploads))
	}
	again := g.uploads[1].GetKeys()
	if len(again) != 4 || !proto.Equal(again[0], keys[0]) || !proto.Equal(again[1], keys[2]) || !proto.Equal(again[2], keys[3]) ||
		!proto.Equal(again[3], keys[4]) || g.tags[0] == g.tags[1] {
		t.Fatalf("after the 207 it sent %d keys under tag %s (first %s), want keys 0, 2, 3, 4 under a new tag", len(again), g.tags[1], g.tags[0])
	}
	if stored, err := c.Upload(context.Background(), again); err != nil || len(stored) != 1 || stored[0] != g.tags[1] {
		t.Fatalf("the same upload again (409): %v, %v", stored, err)
	}
}

// The download chain crosses midnight: the client follows nextBatchTag
// from a day's first batch to the next day's, asking each batch on the
// day its tag names, until the chain ends.
func TestClientFollowsTheChain(t *testing.T) {
	now := time.Now()
	g := &fakeGateway{t: t, first: map[string]string{"2026-12-04": "20261204-1"}, batches: map[string]efgs.Batch{
		"20261204-1": {Keys: freshKeys(2, "NL", now), Tag: "20261204-1", Next: "20261204-2"},
		"20261204-2": {Keys: freshKeys(3, "BE", now), Tag: "20261204-2", Next: "20261205-1"},
		"20261205-1": {Keys: freshKeys(1, "IT", now), Tag: "20261205-1"},
	}}
	srv := httptest.NewServer(g)
	defer srv.Close()
	c := client(t, srv.URL)
	day, tag := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), ""
	var keys, tags int
	for {
		b, err := c.Download(context.Background(), day, tag)
		if err != nil || b == nil {
			t.Fatalf("download %v %q: %v %v", day, tag, b, err)
		}
		keys, tags = keys+len(b.Keys), tags+1
		if b.Next == "" {
			break
		}
		tag = b.Next
		if d, ok := efgs.TagDay(tag); ok {
			day = d
		}
	}
	asked, _ := json.Marshal(g.asked)
	if keys != 6 || tags != 3 || string(asked) != `["2026-12-04 ","2026-12-04 20261204-2","2026-12-05 20261205-1"]` {
		t.Fatalf("followed %d batches, %d keys, asking %s", tags, keys, asked)
	}
	if b, err := c.Download(context.Background(), time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), ""); b != nil || err != nil {
		t.Fatalf("a day without batches: %v %v, want none", b, err)
	}
}
