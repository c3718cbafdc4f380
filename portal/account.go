package portal

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"image/png"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// minPassword is the shortest password an account may have.
const minPassword = 12

// accountPage shows a worker their own account: roles, second factor, and
// the form to change their password.
func (p *Portal) accountPage(c *gin.Context) {
	p.showAccount(c, http.StatusOK, "")
}

func (p *Portal) showAccount(c *gin.Context, status int, refusal string) {
	notice := map[string]string{
		"password": msg("Your password was changed; your other sessions were signed out."),
		"totp":     msg("Your second factor is set up: from your next sign-in on, the portal asks for a code of your authenticator."),
	}[c.Query("notice")]
	p.render(c, status, "account.html", page{Title: msg("Your account"), Error: refusal, Notice: notice})
}

// passwordProblem says what is wrong with a new password and its
// repetition, in plain words ("": nothing).
func passwordProblem(next, repeat string) string {
	switch {
	case len(next) < minPassword:
		return msg("The new password needs at least 12 characters.")
	case next != repeat:
		return msg("The new password and its repetition differ: type the same one twice.")
	}
	return ""
}

// changePassword sets a new password for the signed-in account after its
// current one is checked; the account's other sessions end (the epoch goes
// up), and this browser is given a session of the new epoch, so that the
// worker who changed it stays signed in.
func (p *Portal) changePassword(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	current, next := c.PostForm("current"), c.PostForm("password")
	if problem := passwordProblem(next, c.PostForm("confirm")); problem != "" {
		p.showAccount(c, http.StatusBadRequest, problem)
		return
	}
	release, ok := p.hashSlot()
	if !ok {
		p.showAccount(c, http.StatusTooManyRequests, busyHashing)
		return
	}
	right := account.CheckPassword(u.GetPasswordHash(), current)
	hash := account.HashPassword(next)
	release()
	if !right {
		p.showAccount(c, http.StatusBadRequest, msg("The current password is wrong."))
		return
	}
	changed := &fsmpb.User{Email: u.GetEmail(), Name: u.GetName(), Provider: u.GetProvider(), Roles: u.GetRoles(),
		PasswordHash: hash, Disabled: u.GetDisabled(), TotpSecret: u.GetTotpSecret()}
	res, err := command.PutUser(c.Request.Context(), p.region, changed)
	if err != nil {
		p.showAccount(c, http.StatusServiceUnavailable, p.tr(c, "The password was not changed: %s", err.Error()))
		return
	}
	now := p.cfg.Now().Unix()
	s := session{Email: u.GetEmail(), Epoch: res.GetSessionEpoch(), Issued: now, LastSeen: now}
	setCookie(c, sessionCookie, s.encode(p.cfg.SessionKey), sessionMaxAge)
	p.audit(c, "change own password", u.GetEmail())
	p.redirectAfterWrite(c, "/portal/account?notice=password")
}

// totpFlash names the flash cookie that holds a second factor being set
// up: its key stays with the browser, sealed, until the worker proves it
// with a code; no node keeps it before that.
const (
	totpFlash  = "totp"
	totpEnrols = 10 * time.Minute
)

// startTOTP draws a second factor for the signed-in account, which has
// none, and sends the browser to the page that shows it.
func (p *Portal) startTOTP(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	if len(u.GetTotpSecret()) > 0 {
		p.showAccount(c, http.StatusBadRequest, msg("Your account has a second factor already; an account manager can reset it."))
		return
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "covid-backend " + p.cfg.Region, AccountName: u.GetEmail()})
	if err == nil {
		err = p.setFlash(c, totpFlash, u.GetEmail(), key.URL(), totpEnrols)
	}
	if err != nil {
		p.showAccount(c, http.StatusInternalServerError, p.tr(c, "The second factor could not be made: %s", err.Error()))
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/account/totp")
}

// enrolPage shows the second factor being set up: a QR code for an
// authenticator app, the key as text, and the form that confirms it.
func (p *Portal) enrolPage(c *gin.Context) {
	p.showEnrol(c, http.StatusOK, "")
}

// enrolView is what the set-up page shows.
type enrolView struct {
	QR     template.URL
	Secret string
}

func (p *Portal) showEnrol(c *gin.Context, status int, refusal string) {
	key, ok := p.pendingTOTP(c)
	if !ok {
		p.showAccount(c, http.StatusBadRequest, msg("Setting up the second factor took too long or was not started; start again."))
		return
	}
	img, err := key.Image(240, 240)
	var buf bytes.Buffer
	if err == nil {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		p.showAccount(c, http.StatusInternalServerError, p.tr(c, "The QR code could not be drawn: %s", err.Error()))
		return
	}
	qr := template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
	p.render(c, status, "totp-enrol.html", page{Title: msg("Set up a second factor"), Error: refusal,
		Data: enrolView{QR: qr, Secret: key.Secret()}})
}

// pendingTOTP is the second factor this browser is setting up.
func (p *Portal) pendingTOTP(c *gin.Context) (*otp.Key, bool) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	var link string
	if p.readFlash(c, totpFlash, u.GetEmail(), &link) != nil {
		return nil, false
	}
	key, err := otp.NewKeyFromURL(link)
	return key, err == nil
}

// confirmTOTP takes the second factor once a code of it is right: the
// secret goes to the state sealed (account.SealTOTP), and from the next
// sign-in on the account asks for a code.
func (p *Portal) confirmTOTP(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	key, ok := p.pendingTOTP(c)
	switch {
	case !ok:
		p.showAccount(c, http.StatusBadRequest, msg("Setting up the second factor took too long or was not started; start again."))
		return
	case !totp.Validate(strings.TrimSpace(c.PostForm("code")), key.Secret()):
		p.showEnrol(c, http.StatusBadRequest, msg("That code is not the one your authenticator shows now; type the six digits it shows."))
		return
	}
	changed := proto.CloneOf(u)
	changed.TotpSecret = account.SealTOTP(p.cfg.CodeKeys[0], u.GetEmail(), key.Secret())
	if _, err := command.PutUser(c.Request.Context(), p.region, changed); err != nil {
		p.showEnrol(c, http.StatusServiceUnavailable, p.tr(c, "The second factor was not saved: %s", err.Error()))
		return
	}
	setCookie(c, flashCookie, "", -time.Second)
	p.audit(c, "set up second factor", u.GetEmail())
	p.redirectAfterWrite(c, "/portal/account?notice=totp")
}
