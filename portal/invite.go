package portal

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// inviteTTL is how long an invitation link works.
const inviteTTL = 7 * 24 * time.Hour

// badInvite is the one answer to a link that does not work.
var badInvite = msg("This invitation link is used, replaced or expired. Ask your account manager for a new one.")

// newInvite draws an invitation: its token, which only the link carries,
// and the token's hash, which the account keeps.
func newInvite() (token string, hash []byte) {
	token = randomToken()
	h := sha256.Sum256([]byte(token))
	return token, h[:]
}

// inviteLink is the link a worker is sent. The token rides in the
// fragment, which browsers never send, so that no server, proxy or log
// sees it; the page moves it into its form (or the worker pastes it).
// It names this portal as the manager reached it: https, or http where the
// node serves plain HTTP behind a proxy that does not say it is https.
func inviteLink(c *gin.Context, token string) string {
	scheme := "https"
	if c.Request.TLS == nil && c.GetHeader("X-Forwarded-Proto") != "https" {
		scheme = "http"
	}
	return scheme + "://" + c.Request.Host + "/portal/invite#" + token
}

// invite gives an account an open invitation, replacing any before it,
// and shows its link on the accounts page (in the flash cookie, for five
// minutes).
func (p *Portal) invite(c *gin.Context, target *fsmpb.User) error {
	token, hash := newInvite()
	target.InviteHash, target.InviteExpiresUnix = hash, p.cfg.Now().Add(inviteTTL).Unix()
	if _, err := command.PutUser(c.Request.Context(), p.region, target); err != nil {
		return err
	}
	u := c.MustGet(ctxUser).(*fsmpb.User)
	return p.setFlash(c, "invite", u.GetEmail(), inviteShown{Email: target.GetEmail(), Link: inviteLink(c, token)}, newKeyShown)
}

// inviteShown is an invitation link just made, for its manager to send.
type inviteShown struct {
	Email, Link string
}

// invitePage asks for the new password, with a CSRF token bound to a
// cookie of its own (no session yet), as the sign-in form does.
func (p *Portal) invitePage(c *gin.Context) { p.showInvite(c, http.StatusOK, "") }

func (p *Portal) showInvite(c *gin.Context, status int, refusal string) {
	tok := randomToken()
	setCookie(c, loginCSRFToken, tok, time.Hour)
	p.render(c, status, "invite.html", page{Title: msg("Set your password"), Error: refusal, CSRF: tok})
}

// acceptInvite sets the invited account's password, once. The token is
// checked before the password is hashed, so that a stranger's guesses
// cost no hash.
func (p *Portal) acceptInvite(c *gin.Context) {
	if !loginCSRF(c) {
		p.showInvite(c, http.StatusForbidden, msg("The form expired; please open the link again."))
		return
	}
	h := sha256.Sum256([]byte(c.PostForm("token")))
	target, ok := p.region.FSM().UserByInvite(h[:])
	if !ok && p.region.CatchUp(c.Request.Context()) == nil { // made a moment ago through another node
		target, ok = p.region.FSM().UserByInvite(h[:])
	}
	password := c.PostForm("password")
	switch {
	case !ok || p.cfg.Now().Unix() >= target.GetInviteExpiresUnix() || target.GetDisabled():
		p.showInvite(c, http.StatusBadRequest, badInvite)
		return
	case passwordProblem(password, c.PostForm("repeat")) != "":
		p.showInvite(c, http.StatusBadRequest, passwordProblem(password, c.PostForm("repeat")))
		return
	}
	release, ok := p.hashSlot()
	if !ok {
		p.showInvite(c, http.StatusTooManyRequests, busyHashing)
		return
	}
	hash := account.HashPassword(password)
	release()
	_, err := command.AcceptInvite(c.Request.Context(), p.region, &fsmpb.AcceptInvite{Email: target.GetEmail(), InviteHash: h[:], PasswordHash: hash})
	var refused *command.Error
	switch {
	case errors.As(err, &refused):
		p.showInvite(c, http.StatusBadRequest, badInvite)
		return
	case err != nil:
		p.showInvite(c, http.StatusServiceUnavailable, msg("The region is not ready; try again in a moment."))
		return
	}
	p.auditAs(c, target, "accept invitation", target.GetEmail())
	p.redirectAfterWrite(c, "/portal/login?notice=password-set")
}
