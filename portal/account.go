package portal

import (
	"net/http"

	"github.com/gin-gonic/gin"

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
	notice := ""
	if c.Query("notice") == "password" {
		notice = "Your password was changed; your other sessions were signed out."
	}
	p.render(c, status, "account.html", page{Title: "Your account", Error: refusal, Notice: notice})
}

// changePassword sets a new password for the signed-in account after its
// current one is checked; the account's other sessions end (the epoch goes
// up), and this browser is given a session of the new epoch, so that the
// worker who changed it stays signed in.
func (p *Portal) changePassword(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	current, next := c.PostForm("current"), c.PostForm("password")
	switch {
	case len(next) < minPassword:
		p.showAccount(c, http.StatusBadRequest, "The new password needs at least 12 characters.")
		return
	case next != c.PostForm("confirm"):
		p.showAccount(c, http.StatusBadRequest, "The new password and its repetition differ.")
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
		p.showAccount(c, http.StatusBadRequest, "The current password is wrong.")
		return
	}
	changed := &fsmpb.User{Email: u.GetEmail(), Name: u.GetName(), Provider: u.GetProvider(), Roles: u.GetRoles(),
		PasswordHash: hash, Disabled: u.GetDisabled(), TotpSecret: u.GetTotpSecret()}
	res, err := command.PutUser(c.Request.Context(), p.region, changed)
	if err != nil {
		p.showAccount(c, http.StatusServiceUnavailable, "The password was not changed: "+err.Error())
		return
	}
	now := p.cfg.Now().Unix()
	s := session{Email: u.GetEmail(), Epoch: res.GetSessionEpoch(), Issued: now, LastSeen: now}
	setCookie(c, sessionCookie, s.encode(p.cfg.SessionKey), sessionMaxAge)
	p.audit(c, "change own password", u.GetEmail())
	p.redirectAfterWrite(c, "/portal/account?notice=password")
}
