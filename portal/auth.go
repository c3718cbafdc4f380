package portal

import (
	"crypto/hmac"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pquerna/otp/totp"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

const (
	ctxUser = "portal.user"
	ctxCSRF = "portal.csrf"
)

// setCookie sets a cookie for the portal's pages: Secure, HttpOnly,
// SameSite=Strict.
func setCookie(c *gin.Context, name, value string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/portal", MaxAge: int(maxAge / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// loginPage shows the sign-in form, with a CSRF token bound to a cookie of
// its own (double submit: there is no session yet).
func (p *Portal) loginPage(c *gin.Context) {
	p.showLogin(c, http.StatusOK, "")
}

func (p *Portal) showLogin(c *gin.Context, status int, refusal string) {
	tok := randomToken()
	setCookie(c, loginCSRFToken, tok, time.Hour)
	p.render(c, status, "login.html", page{Title: msg("Sign in"), Error: refusal, Notice: notices[c.Query("notice")], CSRF: tok})
}

// loginCSRF checks the sign-in forms' double-submit token.
func loginCSRF(c *gin.Context) bool {
	cookie, err := c.Cookie(loginCSRFToken)
	return err == nil && cookie != "" && hmac.Equal([]byte(cookie), []byte(c.PostForm("csrf")))
}

// signInFloor is the least time a refused sign-in takes: an unknown email
// costs a hash, a wrong password a hash and a raft write, a locked account
// a hash, and each is answered alike after this long, so that neither the
// answer nor its time tells which emails exist or which are locked.
const signInFloor = 500 * time.Millisecond

// badSignIn is the one answer of a refused sign-in.
var badSignIn = msg("Wrong email or password, or too many failed sign-ins: then wait 15 minutes.")

// login checks the password: an unknown account, a wrong password and a
// locked account get the same answer after the same time. A wrong password
// counts against the client on that account (five lock that client out
// for 15 minutes) and against the account (twenty lock it, except to the
// right password with the right second factor, so that strangers cannot
// keep a worker with TOTP out), recorded in the replicated state, which a
// follower reads once it has caught up with the leader's commits (a lock
// set a moment ago elsewhere holds here).
func (p *Portal) login(c *gin.Context) {
	start := time.Now()
	if !loginCSRF(c) {
		p.showLogin(c, http.StatusForbidden, msg("The form expired; please sign in again."))
		return
	}
	release, ok := p.hashSlot()
	if !ok {
		c.Header("Retry-After", "2")
		p.showLogin(c, http.StatusTooManyRequests, busyHashing)
		return
	}
	release = sync.OnceFunc(release)
	defer release()
	refuse := func() {
		release() // the wait holds no hash slot
		time.Sleep(time.Until(start.Add(signInFloor)))
		p.showLogin(c, http.StatusUnauthorized, badSignIn)
	}
	if err := p.region.CatchUp(c.Request.Context()); err != nil {
		p.cfg.Logger.Warn("sign-in decided on this node's state: cannot catch up with the leader", "err", err)
	}
	email, password := strings.ToLower(strings.TrimSpace(c.PostForm("email"))), c.PostForm("password")
	u, ok := p.region.FSM().User(email)
	now, client := p.cfg.Now(), p.signInClient(c)
	switch {
	case !ok:
		account.CheckPassword(p.unknownHash, password) // costs what a known account's check does
		refuse()
		return
	case p.locked(u, client, now):
		account.CheckPassword(u.GetPasswordHash(), password)
		refuse()
		return
	case !account.CheckPassword(u.GetPasswordHash(), password) || u.GetDisabled():
		command.Login(c.Request.Context(), p.region, &fsmpb.Login{Email: email, Client: client})
		p.auditAs(c, u, "refused sign-in", "") // for its managers to see; an unknown email writes nothing
		refuse()
		return
	}
	if len(u.GetTotpSecret()) > 0 {
		pending := session{Email: email, Epoch: u.GetSessionEpoch(), Issued: now.Unix(), LastSeen: now.Unix()}
		setCookie(c, pendingCookie, pending.encode(p.cfg.SessionKey), pendingMaxAge)
		p.render(c, http.StatusOK, "totp.html", page{Title: msg("Second factor"), CSRF: pending.csrfToken(p.cfg.SessionKey)})
		return
	}
	p.signIn(c, u)
}

// signInClient is the client a sign-in counts against (a keyed hash of its
// address).
func (p *Portal) signInClient(c *gin.Context) []byte {
	return account.SignInClient(p.cfg.SessionKey, c.ClientIP())
}

// locked tells whether the account refuses a sign-in from client: the
// client is locked out, or the account is and has no second factor to let
// its owner through.
func (p *Portal) locked(u *fsmpb.User, client []byte, now time.Time) bool {
	clientLocked, accountLocked := fsm.SignInLocked(u, client, now.Unix())
	return clientLocked || accountLocked && len(u.GetTotpSecret()) == 0
}

// totp checks the second factor of a sign-in whose password was right.
func (p *Portal) totp(c *gin.Context) {
	raw, _ := c.Cookie(pendingCookie)
	pending, err := decodeSession(p.cfg.SessionKey, raw)
	u, ok := p.region.FSM().User(pending.Email)
	now, client := p.cfg.Now(), p.signInClient(c)
	if err != nil || !ok || !pending.live(now, pendingMaxAge) || pending.Epoch != u.GetSessionEpoch() ||
		!hmac.Equal([]byte(c.PostForm("csrf")), []byte(pending.csrfToken(p.cfg.SessionKey))) || p.locked(u, client, now) {
		p.showLogin(c, http.StatusUnauthorized, msg("Please sign in again."))
		return
	}
	secret, err := account.OpenTOTP(p.cfg.CodeKeys, u.GetEmail(), u.GetTotpSecret())
	if err != nil {
		p.cfg.Logger.Error("a second factor's secret does not open: is --code-key-file the region's?", "err", err)
	}
	if err != nil || !totp.Validate(strings.TrimSpace(c.PostForm("code")), secret) {
		command.Login(c.Request.Context(), p.region, &fsmpb.Login{Email: u.GetEmail(), Client: client})
		p.auditAs(c, u, "refused second factor", "")
		p.render(c, http.StatusUnauthorized, "totp.html", page{Title: msg("Second factor"), Error: msg("Wrong code."), CSRF: pending.csrfToken(p.cfg.SessionKey)})
		return
	}
	setCookie(c, pendingCookie, "", -time.Second)
	p.signIn(c, u)
}

// signIn starts a session and clears the account's failure count.
func (p *Portal) signIn(c *gin.Context, u *fsmpb.User) {
	if _, err := command.Login(c.Request.Context(), p.region, &fsmpb.Login{Email: u.GetEmail(), Ok: true, Client: p.signInClient(c)}); err != nil {
		p.showLogin(c, http.StatusServiceUnavailable, msg("The region is not ready; try again in a moment."))
		return
	}
	now := p.cfg.Now().Unix()
	s := session{Email: u.GetEmail(), Epoch: u.GetSessionEpoch(), Issued: now, LastSeen: now}
	setCookie(c, sessionCookie, s.encode(p.cfg.SessionKey), sessionMaxAge)
	c.Set(ctxUser, u)
	p.audit(c, "sign in", "")
	c.Redirect(http.StatusSeeOther, "/portal/")
}

// requireSession admits a request with a live session of an enabled
// account whose epoch it carries, renews the idle timer, and checks the
// CSRF token of every POST.
func (p *Portal) requireSession(c *gin.Context) {
	raw, _ := c.Cookie(sessionCookie)
	s, err := decodeSession(p.cfg.SessionKey, raw)
	u, ok := p.region.FSM().User(s.Email)
	now := p.cfg.Now()
	if err != nil || !ok || u.GetDisabled() || u.GetSessionEpoch() != s.Epoch || !s.live(now, sessionMaxAge) {
		c.Redirect(http.StatusSeeOther, "/portal/login")
		c.Abort()
		return
	}
	csrf := s.csrfToken(p.cfg.SessionKey)
	c.Set(ctxUser, u)
	c.Set(ctxCSRF, csrf)
	if c.Request.Method == http.MethodPost && !hmac.Equal([]byte(c.PostForm("csrf")), []byte(csrf)) {
		p.render(c, http.StatusForbidden, "message.html", page{Title: msg("Refused"), Error: msg("The form's security token is missing or wrong; reload the page and try again.")})
		c.Abort()
		return
	}
	s.LastSeen = now.Unix()
	setCookie(c, sessionCookie, s.encode(p.cfg.SessionKey), sessionMaxAge)
}

// logout ends every session of the account (its epoch goes up).
func (p *Portal) logout(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	command.Login(c.Request.Context(), p.region, &fsmpb.Login{Email: u.GetEmail(), EndSessions: true})
	p.audit(c, "sign out", "")
	setCookie(c, sessionCookie, "", -time.Second)
	setCookie(c, flashCookie, "", -time.Second) // a code shown on a shared computer goes with the session
	c.Redirect(http.StatusSeeOther, "/portal/login")
}
