// Package api is the HTTP layer of a node: the app API (publish, key
// reads), the admin API (members, health authorities) and the endpoint that
// followers forward writes to. It only translates between HTTP and the node.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/jwks"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// Config configures the HTTP layer.
type Config struct {
	// Addr is the listen address.
	Addr string
	// TLS, if set, makes the app and admin API HTTPS (with HTTP/2); its
	// certificate may change between handshakes (servingcert).
	TLS *tls.Config
	// AdminToken guards the admin and member-to-member endpoints.
	AdminToken string
	// CodeKeys hash one-time codes, RevisionKeys seal revision tokens:
	// every node of a region has the same; the first of each makes, every
	// one opens, so that a key rotated out leaves outstanding codes and
	// tokens valid. None given: one of each is derived from the admin
	// token (then rotating the token voids them).
	CodeKeys, RevisionKeys [][]byte
	// TrustedProxies may set X-Forwarded-For; none by default.
	TrustedProxies []string
	// FederationKey signs this region's batches for other regions (nil: the
	// node serves no own signed batches).
	FederationKey *federation.Key
	// Pool is this node's part of the federation gossip pool (nil: none).
	Pool *federation.Pool
	// Feed configures the export files and the delta feed.
	Feed feed.Config
	// ExportDir, if set, is kept a mirror of the downloads (index.txt,
	// batches.txt and their files), for nginx or a CDN origin.
	ExportDir string
	// Verification, if set, runs the verification service (device and
	// issuing API) with these keys.
	Verification *Verification
	// Limits are the DoS filters; the zero value turns them all off.
	Limits Limits
	// EFGSCallback serves GET /v1/efgs/callback, which the EU gateway
	// calls on a new download batch: it wakes the leader's exchange.
	EFGSCallback bool
	// Collectors are more of the node's metrics, served on /metrics with
	// the API's (leader jobs' counters).
	Collectors []prometheus.Collector
	// Mounts add other fronts' routes (the portal's pages) to the API port,
	// behind its read rate limit; api knows nothing of what they serve.
	Mounts []Mount
	// JWKS fetches a health authority's key set when one is registered by
	// its URL (the zero value: HTTPS only, 10-second timeout).
	JWKS jwks.Fetcher
	// Now is the clock used to check certificates and keys.
	Now    func() time.Time
	Logger *slog.Logger
}

// Mount adds another front's routes to r, given the services it shares
// with the API.
type Mount func(r gin.IRouter, shared Shared) error

// Shared is what the API shares with the fronts mounted beside it.
type Shared struct {
	// Issuer issues verification codes (nil without the verification
	// service).
	Issuer *verify.Issuer
	// CodeKeys are the region's code keys, the first of which makes: fronts
	// derive keys of their own from them (portal sessions, the seal of
	// second-factor secrets).
	CodeKeys [][]byte
	// StatsThreshold is the smallest count statistics show as it is
	// (Verification.StatsThreshold).
	StatsThreshold int
}

// Server serves one node's HTTP API.
type Server struct {
	cfg     Config
	node    Region
	catalog *feed.Catalog
	// appConfigs caches the app configuration's files by version.
	appConfigs appConfigCache
	// codeKeys hash one-time codes and revisionKeys seal revision tokens:
	// the first of each makes, every one opens (rotation with an overlap).
	codeKeys     [][]byte
	revisionKeys [][]byte
	codeFailures *ipLimiter
	// tokenFailures counts wrong admin tokens per client, at the rate
	// wrong codes are allowed.
	tokenFailures *ipLimiter
	recent        node.Latencies
	http          *http.Server
	// member serves the member port (mutual TLS) when the node has one.
	member *http.Server
	// ownSigned keeps this region's signed federation batches.
	ownSigned signedCache
	// metrics are the node's Prometheus metrics.
	metrics *metrics
	// stopMirror ends the export mirror's loop.
	stopMirror context.CancelFunc
	// issuer issues verification codes, for the issuing API, user reports
	// and the portal; decoys sign decoy tokens and certificates (both nil
	// without the verification service).
	issuer *verify.Issuer
	decoys *decoyKeys
}

// New builds the HTTP server of a node.
func New(cfg Config, n Region) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Feed.Root = "v1/exports"
	if len(cfg.CodeKeys) == 0 {
		cfg.CodeKeys = [][]byte{verify.CodeKeyFromToken(cfg.AdminToken)}
	}
	if cfg.JWKS.Client == nil {
		cfg.JWKS = jwks.Fetcher{Client: &http.Client{Timeout: 10 * time.Second}}
	}
	if len(cfg.RevisionKeys) == 0 {
		cfg.RevisionKeys = [][]byte{publish.RevisionTokenKey(cfg.AdminToken)}
	}
	s := &Server{cfg: cfg, node: n, catalog: feed.NewCatalog(cfg.Feed, n.FSM()), codeKeys: cfg.CodeKeys,
		revisionKeys:  cfg.RevisionKeys,
		codeFailures:  newIPLimiter(cfg.Limits.CodeFailuresPerHour/3600, cfg.Limits.CodeFailureBurst, cfg.Now),
		tokenFailures: newIPLimiter(cfg.Limits.CodeFailuresPerHour/3600, cfg.Limits.CodeFailureBurst, cfg.Now),
		decoys:        newDecoyKeys(cfg.Verification)}
	v := cfg.Verification
	if v == nil { // /v1/codes issues verification codes all the same
		v = &Verification{}
	}
	s.issuer = verify.NewIssuer(verify.IssuerConfig{Region: n, CodeKeys: cfg.CodeKeys, ShortTTL: v.ShortTTL,
		SMS: v.SMS, LongTTL: v.LongTTL, SMSTemplate: v.SMSTemplate, Phones: v.Phones, RegionName: v.Region, Now: cfg.Now, Logger: cfg.Logger})
	h, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Addr:              cfg.Addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ConnContext:       withConn,
	}
	s.member = &http.Server{Handler: s.memberHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, ConnContext: node.MemberConnContext}
	return s, nil
}

// memberRoutes are the member-to-member endpoints: on the member port under
// mutual TLS, or (plaintext raft) on the API port behind the admin token.
func (s *Server) memberRoutes(r gin.IRoutes) {
	r.POST(node.PathApplyBatch, s.forwarded("application/x-protobuf", maxForwardBatchBytes, s.node.ApplyForwardedBatch))
	r.POST(node.PathWake+":name", func(c *gin.Context) { s.node.WakeHere(c.Param("name")); c.Status(http.StatusOK) })
	r.GET(node.PathClock, func(c *gin.Context) { c.JSON(http.StatusOK, s.node.Clock()) })
	r.GET(node.PathReadIndex, func(c *gin.Context) {
		read := s.node.LeaderReadIndex
		if c.Query("applied") == "true" {
			read = s.node.LeaderAppliedIndex
		}
		ri, err := read()
		if err != nil {
			fail(c, http.StatusServiceUnavailable, "no_leader", err.Error())
			return
		}
		c.JSON(http.StatusOK, ri)
	})
}

// memberHandler serves the member port: whoever got past its handshake
// holds a certificate of the region CA, which alone makes no one a member.
// Forwarded writes, clocks and read indexes answer only a member of the
// raft configuration; membership changes (a join among them) need the
// region's admin token as well, which every node holds and a stolen or
// stray certificate does not.
func (s *Server) memberHandler() http.Handler {
	r := gin.New()
	r.Use(gin.Recovery())
	r.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "not_found", "no such member endpoint") })
	s.memberRoutes(r.Group("/", s.requireMemberPeer))
	m := r.Group("/", s.requireToken, bodyLimit(maxAdminBody))
	m.POST(node.PathMembers, s.addMember)
	m.DELETE(node.PathMembers+"/:id", s.removeMember)
	m.POST(node.PathMembers+"/transfer-leadership", s.transferLeadership)
	m.POST(node.PathMembers+"/promote", s.promoteMember)
	return r
}

// Handler returns the router, for tests.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve answers requests on l, and member requests on the node's member
// port, until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if s.cfg.ExportDir != "" {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopMirror = cancel
		go s.mirrorLoop(ctx)
	}
	if ml := s.node.MemberListener(); ml != nil {
		go s.member.Serve(ml)
	}
	serve := s.http.Serve
	if s.cfg.TLS != nil {
		s.http.TLSConfig = s.cfg.TLS
		serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") }
	}
	if err := serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopMirror != nil {
		s.stopMirror()
	}
	return errors.Join(s.http.Shutdown(ctx), s.member.Shutdown(ctx))
}

// mirrorLoop keeps the export mirror up to date, checking every second
// (a sync that finds nothing new does nothing).
func (s *Server) mirrorLoop(ctx context.Context) {
	m := &feed.Mirror{Dir: s.cfg.ExportDir, Catalog: s.catalog}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := m.Sync(s.cfg.Now()); err != nil {
			s.cfg.Logger.Warn("export mirror", "dir", s.cfg.ExportDir, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pprofHandler serves Go's profiles to operators (admin token required).
func pprofHandler(w http.ResponseWriter, r *http.Request) {
	switch name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/"); name {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "":
		pprof.Index(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
}

func (s *Server) routes() (http.Handler, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	m := s.newMetrics()
	s.metrics = m
	r.Use(gin.Recovery(), m.observe)
	if err := r.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	r.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "not_found", "no such endpoint") })
	r.NoMethod(func(c *gin.Context) { fail(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed") })
	r.HandleMethodNotAllowed = true

	// Every read of the app API answers HEAD as GET, without the body.
	read := func(path string, h ...gin.HandlerFunc) {
		r.Match([]string{http.MethodGet, http.MethodHead}, path, h...)
	}
	read("/healthz", s.healthz)
	read("/readyz", s.readyz)
	read("/v1/status", s.status)
	publishLimit := rateLimit(newIPLimiter(s.cfg.Limits.PublishRate, s.cfg.Limits.PublishBurst, s.cfg.Now))
	readLimiter := newIPLimiter(s.cfg.Limits.ReadRate, s.cfg.Limits.ReadBurst, s.cfg.Now)
	readLimit := rateLimit(readLimiter)
	downloads, err := newDownloads(s, r, readLimiter, s.cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	gate := newUploadGate(s.cfg.Limits.MaxUploadsInFlight, s.cfg.Limits.UploadQueueWait)
	r.POST("/v1/publish", publishLimit, s.admittedPublish, gate.shedEarly, s.readUpload, gate.admit, s.publish)
	r.POST("/v1/codes", publishLimit, s.admitted, s.requireProvider, s.issueCode)
	if s.cfg.Verification != nil {
		s.verificationRoutes(r, publishLimit)
	}
	shared := Shared{CodeKeys: s.codeKeys}
	if s.cfg.Verification != nil {
		shared.Issuer, shared.StatsThreshold = s.issuer, s.statsThreshold()
	}
	for _, mount := range s.cfg.Mounts {
		if err := mount(r.Group("", readLimit), shared); err != nil {
			return nil, err
		}
	}
	read("/v1/keys", readLimit, s.publicRead, s.keyFeed)
	for _, route := range []string{routeIndex, routeBatches, routeDayFile, routeFile} {
		read(route, downloads.handler(route)) // proxied requests; the others take the fast path
	}
	read("/v1/appconfig", readLimit, s.appConfigPointer)
	read("/v1/appconfig/:name", readLimit, s.appConfigFile)
	read("/v1/federation", readLimit, s.publicRead, s.federationStatus)
	if s.cfg.EFGSCallback {
		read("/v1/efgs/callback", readLimit, s.efgsCallback)
	}
	read("/v1/federation/batches/:origin/:seq", readLimit, s.signedBatch)
	read("/v1/regions/:region/exports/index.txt", readLimit, s.regionIndex)
	read("/v1/regions/:region/exports/:name", readLimit, s.regionFile)

	admin := r.Group("/", s.requireToken, bodyLimit(maxAdminBody), s.auditAdmin)
	// A batch to import may be as large as its documentation says (the
	// handler bounds it).
	r.POST(pathImport, s.requireToken, s.importBatch)
	r.POST("/v1/admin/restore", s.requireToken, s.restoreState)
	if s.node.MemberListener() == nil {
		s.memberRoutes(admin.Group("/", requireLoopback)) // plaintext raft: members use this port and the admin token
	}
	admin.GET(node.PathMembers, s.readView, s.listMembers)
	admin.POST(node.PathMembers, s.addMember)
	admin.DELETE(node.PathMembers+"/:id", s.removeMember)
	admin.POST(node.PathMembers+"/transfer-leadership", s.transferLeadership)
	admin.POST(node.PathMembers+"/promote", s.promoteMember)
	admin.GET("/v1/admin/authorities", s.readView, s.listAuthorities)
	admin.POST("/v1/admin/authorities", s.putAuthority)
	admin.DELETE("/v1/admin/authorities/:issuer", s.removeAuthority)
	admin.GET("/v1/admin/policy", s.readView, s.getPolicy)
	admin.GET("/v1/admin/status", s.adminStatus)
	admin.GET("/v1/admin/federation", s.federationPool)
	admin.PUT("/v1/admin/policy", s.setPolicy)
	admin.POST("/v1/admin/snapshot", s.snapshot)
	admin.GET("/v1/admin/backup", s.backupState)
	admin.POST("/v1/admin/seal", s.seal)
	admin.POST("/v1/admin/expire", s.expire)
	admin.GET("/v1/admin/keys", s.readView, s.keys)
	admin.GET("/v1/admin/submissions", s.readView, s.listSubmissions)
	admin.GET("/v1/admin/revocations", s.readView, s.listRevocations)
	admin.POST("/v1/admin/revocations", s.revoke)
	admin.GET("/v1/admin/providers", s.readView, s.listProviders)
	admin.POST("/v1/admin/providers", s.putProvider)
	admin.DELETE("/v1/admin/providers/:id", s.revokeProvider)
	admin.GET("/v1/admin/apikeys", s.readView, s.listAPIKeys)
	admin.POST("/v1/admin/apikeys", s.putAPIKey)
	admin.DELETE("/v1/admin/apikeys/:name", s.revokeAPIKey)
	admin.GET("/v1/admin/users", s.readView, s.listUsers)
	admin.POST("/v1/admin/users", s.putUser)
	admin.GET("/v1/admin/certs/revoked", s.readView, s.listRevokedCerts)
	admin.POST("/v1/admin/certs/revoked", s.revokeCert)
	admin.POST("/v1/admin/trust", s.putTrust)
	admin.POST("/v1/admin/trust/gaen", s.putGAENSource)
	admin.POST("/v1/admin/trust/efgs", s.putEFGSCountry)
	admin.POST("/v1/admin/hub/countries", s.putHubCountry)
	admin.POST("/v1/admin/appconfig", s.setAppConfig)
	admin.GET("/v1/admin/appconfig/history", s.appConfigHistory)
	admin.GET("/v1/admin/service", s.readView, s.getService)
	admin.POST("/v1/admin/service", s.setService)
	admin.DELETE("/v1/admin/trust/:region", s.removeTrust)
	admin.GET("/debug/pprof/*profile", gin.WrapF(pprofHandler))
	admin.GET("/metrics", m.handler())
	return downloads, nil
}
