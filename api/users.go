package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pquerna/otp/totp"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// UserRequest creates or changes a portal account (admin API): a region
// operator (no provider) or a worker of a provider, with roles; TOTP asks
// for a new second factor, whose otpauth:// URL is answered once.
type UserRequest struct {
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Provider string   `json:"provider,omitempty"`
	Roles    []string `json:"roles"`
	Password string   `json:"password"`
	TOTP     bool     `json:"totp,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
}

// UserView is an account as operators see it: no password hash, no secret.
type UserView struct {
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Provider string    `json:"provider,omitempty"`
	Roles    []string  `json:"roles"`
	TOTP     bool      `json:"totp"`
	Disabled bool      `json:"disabled"`
	Locked   bool      `json:"locked"`
	Created  time.Time `json:"created"`
}

// minPassword is the shortest password an account may have.
const minPassword = 12

func (s *Server) putUser(c *gin.Context) {
	var req UserRequest
	if !bindStrict(c, &req) {
		return
	}
	if len(req.Password) < minPassword {
		fail(c, http.StatusBadRequest, "bad_request", "password: at least 12 characters")
		return
	}
	u := &fsmpb.User{Email: strings.ToLower(req.Email), Name: req.Name, Provider: req.Provider, Roles: req.Roles,
		PasswordHash: account.HashPassword(req.Password), Disabled: req.Disabled}
	out := gin.H{"email": u.GetEmail()}
	if req.TOTP {
		key, err := totp.Generate(totp.GenerateOpts{Issuer: "covid-backend " + s.node.Config().Region, AccountName: u.GetEmail()})
		if err != nil {
			failErr(c, err)
			return
		}
		u.TotpSecret, out["totp_url"] = account.SealTOTP(s.codeKeys[0], u.GetEmail(), key.Secret()), key.URL()
	} else if old, ok := s.node.FSM().User(u.GetEmail()); ok {
		u.TotpSecret = old.GetTotpSecret()
	}
	if _, err := command.PutUser(c.Request.Context(), s.node, u); err != nil {
		failErr(c, err)
		return
	}
	command.Audit(c.Request.Context(), s.node, &fsmpb.AuditEvent{Actor: "admin-api", Provider: u.GetProvider(), Action: "put account", Target: u.GetEmail()})
	c.Set(ctxAudited, true)
	c.JSON(http.StatusOK, out)
}

func (s *Server) listUsers(c *gin.Context) {
	out := []UserView{}
	now := s.cfg.Now().Unix()
	for _, u := range s.node.FSM().Users("*") {
		out = append(out, UserView{Email: u.GetEmail(), Name: u.GetName(), Provider: u.GetProvider(), Roles: u.GetRoles(),
			TOTP: len(u.GetTotpSecret()) > 0, Disabled: u.GetDisabled(), Locked: now < u.GetLockedUntilUnix(),
			Created: time.Unix(u.GetCreatedUnix(), 0).UTC()})
	}
	c.JSON(http.StatusOK, gin.H{"users": out})
}
