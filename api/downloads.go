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

// exportIndex serves index.txt (the daily roll-ups of the last 14 days)
// or batches.txt: oldest first, one path per line relative to the
// server's base URL.
func (s *Server) exportIndex(rollups bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		f := s.catalog.IndexFile(s.cfg.Now(), rollups)
		serveBytes(c, "text/plain; charset=utf-8", indexCache, f.ETag, f.Data)
	}
}

// exportFile serves one export file under dir; the same name gives the
// same bytes on every node of the region, so it is cached as immutable.
func (s *Server) exportFile(dir string) gin.HandlerFunc {
	return func(c *gin.Context) { s.serveExport(c, dir+c.Param("name")) }
}

func (s *Server) serveExport(c *gin.Context, name string) {
	f, err := s.catalog.File(s.cfg.Now(), name)
	switch {
	case errors.Is(err, feed.ErrNotFound):
		fail(c, http.StatusNotFound, "not_found", "no such export file")
		return
	case errors.Is(err, feed.ErrNoSigningKey):
		fail(c, http.StatusServiceUnavailable, "no_export_key", "this node has no export signing key")
		return
	case err != nil:
		failErr(c, err)
		return
	}
	serveBytes(c, "application/zip", immutableCache, f.ETag, f.Data)
}

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
// matching If-None-Match. It writes the bytes in one call with their
// length (no ranges: files are small and immutable, and a CDN or proxy in
// front serves ranges if anyone wants them).
func serveBytes(c *gin.Context, contentType, cacheControl, etag string, data []byte) {
	h := c.Writer.Header()
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", etag)
	if match := c.GetHeader("If-None-Match"); match != "" && etagMatches(match, etag) {
		c.Status(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	c.Status(http.StatusOK)
	if c.Request.Method != http.MethodHead {
		c.Writer.Write(data)
	}
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
