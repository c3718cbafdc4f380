package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/feed"
)

const (
	immutableCache = "public, max-age=31536000, immutable"
	indexCache     = "public, max-age=300"
	deltaCache     = "public, max-age=60"
)

// keyFeed serves the delta feed: GET /v1/keys?since=N[&until=M].
func (s *Server) keyFeed(c *gin.Context) {
	var cur feed.Cursor
	var err error
	if v, ok := c.GetQuery("since"); ok {
		cur.HasSince = true
		if cur.Since, err = parseCursor(v); err != nil {
			fail(c, http.StatusBadRequest, "bad_cursor", "since: "+err.Error())
			return
		}
	}
	if v, ok := c.GetQuery("until"); ok {
		if cur.Until, err = parseCursor(v); err != nil || cur.Until == 0 {
			fail(c, http.StatusBadRequest, "bad_cursor", "until: want a batch number from 1")
			return
		}
	}
	explicitUntil := cur.Until != 0
	asJSON := strings.Contains(c.GetHeader("Accept"), "application/json")
	f, answered, err := s.catalog.Delta(cur, asJSON)
	if errors.Is(err, feed.ErrFutureCursor) {
		fail(c, http.StatusBadRequest, "bad_cursor", err.Error())
		return
	}
	if errors.Is(err, feed.ErrBusy) {
		c.Header("Retry-After", "1")
		fail(c, http.StatusServiceUnavailable, "busy", "this node is building as many deltas as it may at once; retry")
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	c.Header("X-Next-Cursor", strconv.FormatUint(uint64(answered.Until), 10))
	ct, cache := "application/x-protobuf", deltaCache
	if asJSON {
		ct = "application/json"
	}
	if explicitUntil {
		cache = immutableCache
	}
	c.Header("Vary", "Accept")
	serveBytes(c, ct, cache, f.ETag, f.Data)
}

func parseCursor(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, errors.New("want a batch number")
	}
	return uint32(n), nil
}

// serveBytes answers with content, its ETag and caching, and 304 to a
// matching If-None-Match (see writeBytes).
func serveBytes(c *gin.Context, contentType, cacheControl, etag string, data []byte) {
	writeBytes(c.Writer, c.Request, []string{contentType}, []string{cacheControl}, etag, data)
}

// writeBytes answers data with its ETag, caching and length, or 304 to a
// matching If-None-Match, and returns the status and the body bytes
// written. It writes the bytes in one call, none for HEAD (no ranges:
// files are small and immutable, and a CDN or proxy in front serves ranges
// if anyone wants them). The header values are set as given, not copied.
func writeBytes(w http.ResponseWriter, r *http.Request, contentType, cacheControl []string, etag string, data []byte) (int, int) {
	h := w.Header()
	h["Cache-Control"] = cacheControl
	h["Etag"] = []string{etag}
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified, 0
	}
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(data))}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return http.StatusOK, 0
	}
	var n int
	write := func() { w.WriteHeader(http.StatusOK); n, _ = w.Write(data) }
	if len(data) < corkMin {
		write()
	} else {
		corked(w, r, write)
	}
	return http.StatusOK, n
}

// writeList answers index.txt or batches.txt, gzip-compressed for a
// client that accepts it (the HTTP stacks of both phone platforms do, and
// unpack it themselves): apps read a list whole at every poll, and
// compressed it costs a fifth of its bytes.
func writeList(w http.ResponseWriter, r *http.Request, f *feed.File) (int, int) {
	w.Header()["Vary"] = varyEncodingValue
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		return writeBytes(w, r, textTypeValue, indexCacheValue, f.ETag, f.Data)
	}
	w.Header()["Content-Encoding"] = gzipValue
	return writeBytes(w, r, textTypeValue, indexCacheValue, f.GzipETag, f.Gzip)
}

var (
	varyEncodingValue = []string{"Accept-Encoding"}
	gzipValue         = []string{"gzip"}
)

// acceptsGzip tells whether an Accept-Encoding header admits gzip: named
// (or as x-gzip) with a weight above 0, or, when not named, "*" with one
// (RFC 9110, 12.5.3).
func acceptsGzip(header string) bool {
	named, star := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.ReplaceAll(strings.ToLower(params), " ", ""), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			} else {
				q = 0
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			named = max(named, q)
		case "*":
			star = max(star, q)
		}
	}
	if named >= 0 {
		return named > 0
	}
	return star > 0
}

// etagMatches implements If-None-Match's list and wildcard (weak
// comparison, as RFC 9110 asks for this header).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
