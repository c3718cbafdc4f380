package federation

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A holder's answer is taken only as a plain batch under the byte limit:
// compressed, oversized, redirected or missing answers are not batches,
// and an oversized one is never read past the limit.
func TestFetchRefusesWhatIsNotABatch(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(bytes.Repeat([]byte{0}, 64<<20)) // a bomb: 64 MiB of zeros
	w.Close()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/1"):
			rw.Header().Set("Content-Encoding", "gzip")
			rw.Write(gz.Bytes())
		case strings.HasSuffix(r.URL.Path, "/2"):
			chunk := bytes.Repeat([]byte{1}, 1<<20)
			for range 64 {
				n, err := rw.Write(chunk)
				served.Add(int64(n))
				if err != nil {
					return
				}
			}
		case strings.HasSuffix(r.URL.Path, "/3"):
			http.Redirect(rw, r, "http://192.0.2.1/v1/federation/batches/A/3", http.StatusFound)
		case strings.HasSuffix(r.URL.Path, "/4"):
			http.NotFound(rw, r)
		default:
			rw.Write([]byte("a batch"))
		}
	}))
	defer srv.Close()
	p := testPool()
	p.client = boundClient("127.0.0.1", nil)
	ctx := context.Background()
	for seq, want := range map[uint32]string{1: "content encoding", 2: "over", 3: "302"} {
		if _, err := p.fetch(ctx, srv.URL, "A", seq); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("batch %d: error %v, want one saying %q", seq, err, want)
		}
	}
	// What the holder wrote includes socket buffers (several MiB on
	// loopback); the fetch stopping at the limit leaves it unable to push
	// the whole 64 MiB.
	if served.Load() >= 64<<20 {
		t.Errorf("the holder wrote all %d bytes of an oversized answer: the fetch read it to the end", served.Load())
	}
	if _, err := p.fetch(ctx, srv.URL, "A", 4); !errors.Is(err, errNotHeld) {
		t.Errorf("404: %v, want errNotHeld", err)
	}
	if got, err := p.fetch(ctx, srv.URL, "A", 5); err != nil || string(got) != "a batch" {
		t.Errorf("plain batch: %q %v", got, err)
	}
}
