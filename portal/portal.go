// Package portal is the web portal of a region for health care workers:
// server-rendered pages (html/template, assets embedded, nothing from other
// hosts) to sign in, issue a code and read it off the page, issue codes in
// bulk from a CSV file, and see and expire the provider's recent codes.
// Accounts, sign-in failures, sessions' epochs and the audit log are in the
// replicated state, so any node serves any worker.
package portal

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/stats"
	"github.com/covid-backend/covid-backend/verify"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/*
var staticFiles embed.FS

// Issuer issues codes for a provider by the issuing rules
// (*verify.Issuer, which the issuing API uses too).
type Issuer interface {
	Issue(ctx context.Context, provider, issuedBy string, req verify.IssueRequest) (verify.IssueResponse, *verify.Error)
}

// Region is what the portal needs of the node: commands, local reads and
// its raft status (*node.Node).
type Region interface {
	command.Applier
	FSM() *fsm.FSM
	Status() (node.Status, error)
	// ConsistentRead waits until this node's state holds what the region
	// has committed (raft's read index); CatchUp until it holds what the
	// leader had committed, without a barrier.
	ConsistentRead(ctx context.Context) error
	CatchUp(ctx context.Context) error
	// RegionVersion is the command version every member applies: a form
	// only a newer version knows waits for the upgrade.
	RegionVersion() uint32
}

// Config configures the portal of one node.
type Config struct {
	// SessionKey signs sessions and CSRF tokens; every node the same.
	SessionKey []byte
	// CodeKeys open the accounts' sealed second-factor secrets
	// (account.OpenTOTP).
	CodeKeys [][]byte
	// SMS tells whether codes can be sent to a phone (the phone field).
	SMS bool
	// Region names the region in the long-code link (ens://v?r=…).
	Region string
	// StatsThreshold is the smallest count the statistics show as it is
	// (0: stats.DefaultThreshold).
	StatsThreshold int
	// ExportSigners are the export keys this node signs with, recorded
	// with each app configuration version it sets.
	ExportSigners []*fsmpb.ExportSigner
	Now           func() time.Time
	Logger        *slog.Logger
}

// Portal serves the pages.
type Portal struct {
	cfg    Config
	region Region
	issuer Issuer
	pages  *template.Template
	// texts holds the portal's texts in its languages (i18n.go).
	texts *translations
	// unknownHash is what a sign-in with an unknown email is checked
	// against, so that it takes as long as one with a known email.
	unknownHash string
	// hashing holds a slot for each argon2id hash being computed
	// (password.go's hashSlot).
	hashing chan struct{}
}

// SessionKey derives the portal's session key from the region's first
// code key, which every node of the region has and no one else.
func SessionKey(codeKey []byte) []byte {
	m := hmac.New(sha256.New, codeKey)
	m.Write([]byte("covid-backend portal sessions"))
	return m.Sum(nil)
}

// New parses the embedded templates; a nil Now is time.Now, a nil Logger
// the default.
func New(cfg Config, region Region, issuer Issuer) (*Portal, error) {
	if cfg.StatsThreshold <= 0 {
		cfg.StatsThreshold = stats.DefaultThreshold
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pages, err := template.New("").Funcs(template.FuncMap{
		"unix": localTime,
		"has":  has,
	}).ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	tr, err := loadTranslations()
	if err != nil {
		return nil, err
	}
	return &Portal{cfg: cfg, region: region, issuer: issuer, pages: pages, texts: tr,
		unknownHash: account.HashPassword("no account has this email"), hashing: make(chan struct{}, maxHashing)}, nil
}

// Routes registers the pages under /portal.
func (p *Portal) Routes(r gin.IRouter) {
	g := r.Group("/portal", securityHeaders, bodyLimit(2<<20))
	g.GET("/static/*file", gin.WrapH(http.StripPrefix("/portal", http.FileServerFS(staticFiles))))
	g.GET("/login", p.loginPage)
	g.POST("/login", p.login)
	g.POST("/totp", p.totp)
	g.GET("/invite", p.invitePage)
	g.POST("/invite", p.acceptInvite)
	in := g.Group("", p.requireSession)
	in.GET("/", p.start)
	in.POST("/logout", p.logout)
	in.GET("/account", p.accountPage)
	in.POST("/account/password", p.changePassword)
	in.POST("/account/totp", p.startTOTP)
	in.GET("/account/totp", p.enrolPage)
	in.POST("/account/totp/confirm", p.confirmTOTP)
	in.POST("/issue", p.role("issue"), p.issue)
	in.GET("/issued", p.role("issue"), p.issuedPage)
	in.GET("/codes", p.role("codes"), p.codes)
	in.POST("/codes/expire", p.role("codes"), p.expire)
	in.GET("/bulk", p.role("bulk"), p.bulkPage)
	in.POST("/bulk", p.role("bulk"), p.bulk)
	in.GET("/bulk/run", p.role("bulk"), p.runPage)
	in.GET("/bulk/run.csv", p.role("bulk"), p.runCSV)
	in.GET("/users", p.role("users"), p.users)
	in.POST("/users", p.role("users"), p.addUser)
	in.POST("/users/action", p.role("users"), p.userAction)
	in.GET("/apikeys", p.role("apikeys"), p.apiKeys)
	in.POST("/apikeys", p.role("apikeys"), p.addAPIKey)
	in.POST("/apikeys/revoke", p.role("apikeys"), p.revokeAPIKey)
	in.POST("/region/apikeys/revoke", p.role("operator"), p.revokeAPIKey)
	in.POST("/region/providers/revoke", p.role("operator"), p.revokeProvider)
	in.GET("/audit", p.auditRole, p.auditPage)
	in.GET("/stats", p.statsRole, p.statsPage)
	in.GET("/stats.csv", p.statsRole, p.statsCSV)
	in.GET("/region", p.role("operator"), p.regionPage)
	in.GET("/hub", p.role("operator"), p.hubPage)
	in.GET("/appconfig", p.role("operator"), p.appConfigPage)
	in.POST("/appconfig", p.role("operator"), p.saveAppConfig)
	in.GET("/service", p.role("operator"), p.servicePage)
	in.POST("/service", p.role("operator"), p.saveService)
	in.POST("/hub", p.role("operator"), p.saveHubCountry)
	in.GET("/revocations", p.role("operator"), p.revocations)
	in.POST("/revocations", p.role("operator"), p.revoke)
}

// auditRole admits operators and account managers to the audit log.
func (p *Portal) auditRole(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	if !has(u, "operator") && !has(u, "users") {
		p.role("operator")(c)
	}
}

// start sends an account to its first page: issuing for workers, the
// console for operators.
func (p *Portal) start(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	switch {
	case has(u, "issue"):
		p.home(c)
	case has(u, "operator"):
		c.Redirect(http.StatusSeeOther, "/portal/region")
	default:
		p.render(c, http.StatusOK, "message.html", page{Title: msg("Welcome"), Notice: msg("Your account has no page to start on; see the menu.")})
	}
}

// securityHeaders: a strict Content-Security-Policy (only this host's
// styles and scripts), no framing, no caching, no referrer.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func bodyLimit(n int64) gin.HandlerFunc {
	return func(c *gin.Context) { c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n) }
}

// page is what every template gets.
type page struct {
	Title, Error, Notice string
	User                 *fsmpb.User
	CSRF                 string
	Data                 any
	// Lang is the request's language (T and TH write in it).
	Lang lang
}

func (p *Portal) render(c *gin.Context, status int, name string, pg page) {
	pg.Lang = p.language(c)
	pg.Title, pg.Error, pg.Notice = pg.T(pg.Title), pg.T(pg.Error), pg.T(pg.Notice)
	if u, ok := c.Get(ctxUser); ok {
		pg.User = u.(*fsmpb.User)
		pg.CSRF = c.GetString(ctxCSRF)
	}
	c.Status(status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := p.pages.ExecuteTemplate(c.Writer, name, pg); err != nil {
		p.cfg.Logger.Error("portal page", "page", name, "err", err)
	}
}

// has tells whether the signed-in account holds a role.
func has(u *fsmpb.User, role string) bool { return slices.Contains(u.GetRoles(), role) }

// role admits accounts that hold the role (403 page otherwise).
func (p *Portal) role(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !has(c.MustGet(ctxUser).(*fsmpb.User), role) {
			p.render(c, http.StatusForbidden, "message.html", page{Title: msg("Not allowed"), Error: msg("Your account may not do this.")})
			c.Abort()
		}
	}
}

// audit records an action of the signed-in account.
func (p *Portal) audit(c *gin.Context, action, target string) {
	p.auditAs(c, c.MustGet(ctxUser).(*fsmpb.User), action, target)
}

// auditAs records an event of account u (signed in or not).
func (p *Portal) auditAs(c *gin.Context, u *fsmpb.User, action, target string) {
	if err := command.Audit(c.Request.Context(), p.region, &fsmpb.AuditEvent{Actor: u.GetEmail(), Provider: u.GetProvider(), Action: action, Target: target}); err != nil {
		p.cfg.Logger.Error("audit event not recorded", "action", action, "err", err)
	}
}

// redirectAfterWrite sends the browser to the page that lists what a write
// changed, once this node's state holds the write: the page is rendered
// from this node's state, which may be a follower's a moment behind.
func (p *Portal) redirectAfterWrite(c *gin.Context, to string) {
	if err := p.region.ConsistentRead(c.Request.Context()); err != nil {
		p.cfg.Logger.Debug("the page after a write may not show it yet", "err", err)
	}
	c.Redirect(http.StatusSeeOther, to)
}

// localTime shows a time in UTC in a <time> element that names it exactly;
// the layout's script (static/localtime.js) shows it in the browser's time
// zone, with the UTC time as its title. Only a formatted number reaches
// the markup.
func localTime(unix int64) template.HTML {
	t := time.Unix(unix, 0).UTC()
	return template.HTML(`<time datetime="` + t.Format(time.RFC3339) + `" title="` + t.Format("2006-01-02 15:04 UTC") + `">` +
		t.Format("2006-01-02 15:04 UTC") + `</time>`)
}
