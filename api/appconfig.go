package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/appconfig"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// appConfigPointer is GET /v1/appconfig: the version in force, the
// service's status it tells (active, winding-down, ended) and where its
// files are. It changes with every new version, so apps ask often;
// the files it names never change.
func (s *Server) appConfigPointer(c *gin.Context) {
	cfg, ok := s.servableAppConfig()
	if !ok {
		fail(c, http.StatusNotFound, "not_found", "the region has no app configuration yet")
		return
	}
	v, status := strconv.FormatUint(uint64(cfg.GetVersion()), 10), "active"
	if svc := appconfig.ServiceOf(cfg); svc != nil {
		status = svc.Status
	}
	body := fmt.Appendf(nil, "{\"version\":%s,\"service\":%q,\"json\":\"/v1/appconfig/v%s.json\",\"zip\":\"/v1/appconfig/v%s.zip\"}\n", v, status, v, v)
	serveBytes(c, "application/json", "public, max-age=60", etagOf(body), body)
}

// appConfigFile is GET /v1/appconfig/vN.json or vN.zip: a version's
// document, or its signed zip; immutable.
func (s *Server) appConfigFile(c *gin.Context) {
	name := c.Param("name")
	num, ext, ok := strings.Cut(strings.TrimPrefix(name, "v"), ".")
	version, err := strconv.ParseUint(num, 10, 32)
	if !ok || err != nil || version == 0 || !strings.HasPrefix(name, "v") || ext != "json" && ext != "zip" {
		fail(c, http.StatusNotFound, "not_found", "no such file: the files are vN.json and vN.zip")
		return
	}
	cfg, found := s.node.FSM().AppConfig(uint32(version))
	if !found {
		fail(c, http.StatusNotFound, "not_found", fmt.Sprintf("no app configuration version %d", version))
		return
	}
	contentType := "application/json"
	if ext == "zip" {
		contentType = "application/zip"
	}
	body, err := s.appConfigs.get(name, func() ([]byte, error) {
		if ext == "json" {
			return appconfig.JSON(cfg)
		}
		keys, err := feed.AppConfigKeys(s.node.FSM(), s.cfg.Feed.SigningKeys, cfg)
		if err != nil {
			return nil, err
		}
		return appconfig.Zip(cfg, keys)
	})
	if errors.Is(err, feed.ErrNotSigned) || errors.Is(err, feed.ErrNoSigningKey) {
		fail(c, http.StatusServiceUnavailable, "not_signed", "this node cannot serve this version signed yet; retry")
		return
	}
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "the configuration cannot be served: "+err.Error())
		return
	}
	serveBytes(c, contentType, immutableCache, etagOf(body), body)
}

// appConfigCache keeps the files of the versions asked for lately (each
// is a few KB; a zip costs a signature to make), at most 16.
type appConfigCache struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (a *appConfigCache) get(name string, make func() ([]byte, error)) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if body, ok := a.files[name]; ok {
		return body, nil
	}
	body, err := make()
	if err != nil {
		return nil, err
	}
	if a.files == nil || len(a.files) >= 16 {
		a.files = map[string][]byte{}
	}
	a.files[name] = body
	return body, nil
}

// etagOf is a body's entity tag: the start of its SHA-256.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// setAppConfig is POST /v1/admin/appconfig: a new version from a
// document (appconfig.Document), checked by the state machine, which
// names the field that is wrong.
func (s *Server) setAppConfig(c *gin.Context) {
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, appconfig.MaxDocument))
	if err != nil {
		fail(c, http.StatusRequestEntityTooLarge, "bad_request", fmt.Sprintf("the document is larger than %d KiB", appconfig.MaxDocument>>10))
		return
	}
	cfg, err := appconfig.Parse(data)
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	cfg.Author, cfg.Signers = "an operator (admin API)", s.node.Config().ExportSigners
	kept, err := command.SetAppConfig(c.Request.Context(), s.node, cfg)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"version": kept.GetVersion(), "time": time.Unix(kept.GetTimeUnix(), 0).UTC().Format(time.RFC3339)})
}

// appConfigHistory is GET /v1/admin/appconfig/history: the versions kept,
// oldest first, with their times and authors.
func (s *Server) appConfigHistory(c *gin.Context) {
	out := []gin.H{}
	for _, h := range s.node.FSM().AppConfigHistory() {
		out = append(out, gin.H{"version": h.GetVersion(), "time": time.Unix(h.GetTimeUnix(), 0).UTC().Format(time.RFC3339), "author": h.GetAuthor()})
	}
	c.JSON(http.StatusOK, gin.H{"versions": out})
}

// servableAppConfig is the newest version whose zip this node can serve:
// with export keys kept in an HSM, the newest the leader has signed (a
// moment after it is set), so that the pointer never names a zip that
// answers 503.
func (s *Server) servableAppConfig() (*fsmpb.AppConfig, bool) {
	f := s.node.FSM()
	for v := f.AppConfigVersion(); v > 0; v-- { // versions are numbered one after another
		cfg, ok := f.AppConfig(v)
		if !ok {
			break // older ones are no longer kept
		}
		if s.appConfigSigned(cfg) {
			return cfg, true
		}
	}
	return nil, false
}

// appConfigSigned tells whether this node can serve the configuration's
// zip: it has the keys its signers name, and the replicated signatures of
// those kept in an HSM are there.
func (s *Server) appConfigSigned(cfg *fsmpb.AppConfig) bool {
	keys, err := feed.AppConfigKeys(s.node.FSM(), s.cfg.Feed.SigningKeys, cfg)
	if err != nil {
		return false
	}
	if !slices.ContainsFunc(keys, func(k export.SigningKey) bool { return k.Private == nil }) {
		return true // no replicated signature to wait for
	}
	bin, err := appconfig.Bin(cfg)
	if err != nil {
		return false
	}
	digest := sha256.Sum256(bin)
	return len(feed.Unsigned(keys, digest[:])) == 0
}
