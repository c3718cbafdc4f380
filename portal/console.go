package portal

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
)

// notices are the fixed messages a redirect may ask a page to show (a
// query parameter names one; it never carries text).
var notices = map[string]string{
	"revoked":          msg("The submission was rolled back: its published keys go out as revoked in the next batch."),
	"saved":            msg("The account was saved."),
	"disable":          msg("The account was disabled: it signs in no more, and its sessions ended."),
	"enable":           msg("The account was enabled."),
	"unlock":           msg("The account was unlocked: it and every address may sign in again."),
	"reset-totp":       msg("The account's second factor was removed: its worker signs in with the password and sets up a new one on their account page."),
	"expired":          msg("The code was expired: it can no longer be used."),
	"key-revoked":      msg("The API key was revoked: it is refused from now on."),
	"provider-revoked": msg("The provider was revoked: it issues no code from now on."),
	"password-set":     msg("Your password is set: sign in with it."),
	"invited":          msg("The account was saved. Send its worker the invitation link below: it works once, for 7 days."),
	"appconfig-saved":  msg("The configuration was saved as the next version: apps take it at their next check."),
	"service-saved":    msg("The end of service was saved; apps are told at their next check of the configuration."),
	"hub-saved":        msg("The country was saved: it speaks to the gateway with these certificates from now on."),
}

// regionView is the operators' view of the region.
type regionView struct {
	Status      node.Status
	LastBatch   *fsm.BatchInfo
	Origins     []originRow
	Authorities []*fsmpb.Authority
	Providers   []*fsmpb.Provider
	APIKeys     []*fsmpb.ApiKey
	Charts      []chart
}

type originRow struct {
	Origin   string
	Last     uint32
	LastEnd  int64
	Batches  int
	NextWant uint32
}

// regionPage is the operators' console: members, leader, indexes, last
// seal, federation per origin, health authorities, providers, API keys,
// charts.
func (p *Portal) regionPage(c *gin.Context) {
	st, err := p.region.Status()
	if err != nil {
		p.render(c, http.StatusServiceUnavailable, "message.html", page{Title: msg("Region"), Error: "The node cannot tell its state: " + err.Error()})
		return
	}
	f := p.region.FSM()
	v := regionView{Status: st, Authorities: f.Authorities(), Providers: f.Providers(), APIKeys: f.APIKeys()}
	if b := f.Batches(); len(b) > 0 {
		v.LastBatch = &b[len(b)-1]
	}
	for _, r := range f.Trusted() {
		if r.GetKind() != "" {
			continue // a GAEN source or a gateway country: no batches of its own here
		}
		kept := f.ForeignBatches(r.GetRegion())
		row := originRow{Origin: r.GetRegion(), Batches: len(kept)}
		if n := len(kept); n > 0 {
			row.Last, row.LastEnd = kept[n-1].GetSeq(), kept[n-1].GetEndUnix()
		}
		row.NextWant, _ = f.NextForeign(r.GetRegion())
		v.Origins = append(v.Origins, row)
	}
	v.Charts = p.charts(p.language(c))
	p.render(c, http.StatusOK, "region.html", page{Title: p.tr(c, "Region %s", st.Region), Notice: notices[c.Query("notice")], Data: v})
}

// revocations lists the kept submissions and the revocations with their
// reasons; an operator rolls a submission back from here.
func (p *Portal) revocations(c *gin.Context) {
	f := p.region.FSM()
	subs := f.Submissions()
	slices.Reverse(subs) // newest first
	revs := f.Revocations()
	var rows []submissionRow
	for _, sub := range subs[:min(len(subs), 200)] {
		rows = append(rows, submissionRow{Submission: sub, RolledBack: rolledBack(revs, sub.ID)})
	}
	p.render(c, http.StatusOK, "revocations.html", page{Title: msg("Submissions and revocations"), Notice: notices[c.Query("notice")],
		Data: struct {
			Submissions []submissionRow
			Revocations []*fsmpb.Revocation
		}{rows, revs}})
}

// submissionRow is a submission in the operators' list, with the
// revocation that rolled it back (nil: none).
type submissionRow struct {
	fsm.Submission
	RolledBack *fsmpb.Revocation
}

// rolledBack is the revocation that rolled back the submission id, if any.
func rolledBack(revs []*fsmpb.Revocation, id [16]byte) *fsmpb.Revocation {
	selector := "submission " + hex.EncodeToString(id[:])
	for _, r := range revs {
		if r.GetSelector() == selector {
			return r
		}
	}
	return nil
}

// revoke rolls back one submission, with the operator's reason.
func (p *Portal) revoke(c *gin.Context) {
	id, err := hex.DecodeString(c.PostForm("submission"))
	reason := strings.TrimSpace(c.PostForm("reason"))
	if err != nil || len(id) != 16 || reason == "" || utf8.RuneCountInString(reason) > command.MaxReason {
		p.render(c, http.StatusBadRequest, "message.html", page{Title: msg("Revoke"), Error: p.tr(c, "A submission and a reason of at most %d characters are needed.", command.MaxReason)})
		return
	}
	if r := rolledBack(p.region.FSM().Revocations(), [16]byte(id)); r != nil {
		p.render(c, http.StatusConflict, "message.html", page{Title: msg("Revoke"), Error: p.tr(c,
			"This submission was rolled back on %s UTC (%s); its keys are revoked already.", time.Unix(r.GetTimeUnix(), 0).UTC().Format("2006-01-02 15:04"), r.GetReason())})
		return
	}
	if !p.confirmed(c, confirmation{Question: p.tr(c, "Roll back the submission %s (%s)? Its keys go out as revoked in the next batch, and apps drop them; it cannot be undone.",
		c.PostForm("submission"), reason),
		Action: "/portal/revocations", Button: msg("Roll back"), Back: "/portal/revocations",
		Fields: []field{{"submission", c.PostForm("submission")}, {"reason", reason}}}) {
		return
	}
	res, err := command.Revoke(c.Request.Context(), p.region, &fsmpb.Revoke{Reason: reason, SubmissionId: id})
	if err != nil {
		p.render(c, http.StatusBadRequest, "message.html", page{Title: msg("Revoke"), Error: err.Error()})
		return
	}
	p.audit(c, "revoke submission", c.PostForm("submission")+": "+reason)
	p.cfg.Logger.Debug("submission rolled back", "keys", res.GetRevoked())
	p.redirectAfterWrite(c, "/portal/revocations?notice=revoked")
}

// auditPageSize is how many events a page of the audit log shows.
const auditPageSize = 100

// auditView is a page of the audit log, its filters as asked and the
// choices of action.
type auditView struct {
	Events        []*fsmpb.AuditEvent
	Actions       []string
	Actor, Action string
	Day           string
	Page          int
	Newer, Older  string // links to the next pages ("": none)
}

// auditPage shows the audit log: everything to operators, the provider's
// own events to its account managers; filtered by actor, action and UTC
// day, a page at a time, newest first.
func (p *Portal) auditPage(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	q := fsm.AuditQuery{Provider: u.GetProvider(), Actor: strings.TrimSpace(c.Query("actor")), Action: c.Query("action"), Limit: auditPageSize}
	if has(u, "operator") {
		q.Provider = "*"
	}
	v := auditView{Actor: q.Actor, Action: q.Action, Day: c.Query("day"), Actions: p.region.FSM().AuditActions(q.Provider)}
	if v.Day != "" {
		d, err := time.Parse(time.DateOnly, v.Day)
		if err != nil {
			p.render(c, http.StatusBadRequest, "audit.html", page{Title: msg("Audit log"), Error: msg("The day is not a date: pick one from the calendar."), Data: v})
			return
		}
		q.Day = d.Unix()
	}
	v.Page, _ = strconv.Atoi(c.Query("page"))
	v.Page = max(v.Page, 0)
	q.Skip = v.Page * auditPageSize
	events, more := p.region.FSM().Audit(q)
	v.Events = events
	link := func(page int) string {
		return "/portal/audit?" + url.Values{"actor": {v.Actor}, "action": {v.Action}, "day": {v.Day}, "page": {strconv.Itoa(page)}}.Encode()
	}
	if v.Page > 0 {
		v.Newer = link(v.Page - 1)
	}
	if more {
		v.Older = link(v.Page + 1)
	}
	p.render(c, http.StatusOK, "audit.html", page{Title: msg("Audit log"), Data: v})
}

// providerRoles are the roles an account of a provider may hold.
var providerRoles = []string{"issue", "bulk", "codes", "users", "apikeys"}

// grantable are the roles u may give an account: an operator any role of
// a provider, a provider's account manager only those it holds itself
// (a manager of users and API keys makes no issuer; GHSA-5v95-v8c8-3rh6
// of the reference verification server).
func grantable(u *fsmpb.User) []string {
	if has(u, "operator") {
		return providerRoles
	}
	return slices.DeleteFunc(slices.Clone(providerRoles), func(r string) bool { return !has(u, r) })
}

// accountRow is an account as its manager sees it in the list: whether it
// signs in, and whether it (or an address) is locked out, to be unlocked.
type accountRow struct {
	*fsmpb.User
	Status string
	Locked bool
}

// accountStatus says whether an account signs in: disabled, locked (until
// when), or active (and whether an address is locked out of it).
func accountStatus(l lang, u *fsmpb.User, now time.Time) string {
	accountLocked, clientLocked := locks(u, now)
	switch {
	case u.GetDisabled():
		return l.T("disabled")
	case len(u.GetInviteHash()) > 0 && now.Unix() < u.GetInviteExpiresUnix():
		return l.T("invited (the link works until %s UTC)", time.Unix(u.GetInviteExpiresUnix(), 0).UTC().Format("2006-01-02 15:04"))
	case accountLocked:
		return l.T("locked until %s UTC (too many failed sign-ins)", time.Unix(u.GetLockedUntilUnix(), 0).UTC().Format("15:04"))
	case clientLocked:
		return l.T("active (an address is locked out after failed sign-ins)")
	}
	return l.T("active")
}

// locks tells whether the account is locked, and whether any address is
// locked out of it, at now.
func locks(u *fsmpb.User, now time.Time) (account, client bool) {
	client = slices.ContainsFunc(u.GetLoginClients(), func(c *fsmpb.LoginClient) bool { return now.Unix() < c.GetLockedUntilUnix() })
	return now.Unix() < u.GetLockedUntilUnix(), client
}

// usersPage is the accounts page: the list, the roles the manager may
// give, and the form as last sent (kept after a refusal).
type usersPage struct {
	Users []accountRow
	Roles []string
	Form  accountForm
	// Invited is an invitation link just made, to be sent.
	Invited *inviteShown
}

// accountForm is what the account form was sent with.
type accountForm struct {
	Email, Name string
	Roles       []string
	Disabled    bool
}

// Has tells the template whether a role was ticked.
func (f accountForm) Has(role string) bool { return slices.Contains(f.Roles, role) }

// users lists and adds the accounts of the manager's provider.
func (p *Portal) users(c *gin.Context) {
	p.showUsers(c, http.StatusOK, "", accountForm{})
}

func (p *Portal) showUsers(c *gin.Context, status int, refusal string, form accountForm) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	now := p.cfg.Now()
	var rows []accountRow
	for _, a := range p.region.FSM().Users(u.GetProvider()) {
		account, client := locks(a, now)
		rows = append(rows, accountRow{User: a, Status: accountStatus(p.language(c), a, now), Locked: account || client})
	}
	v := usersPage{Users: rows, Roles: grantable(u), Form: form}
	var invited inviteShown
	if p.readFlash(c, "invite", u.GetEmail(), &invited) == nil {
		v.Invited = &invited
	}
	p.render(c, status, "users.html", page{Title: msg("Accounts"), Notice: notices[c.Query("notice")], Error: refusal, Data: v})
}

// addUser creates or changes an account of the manager's own provider (an
// account of another provider is refused by the state machine). A refusal
// is shown on the form, as it was filled in (but the password).
func (p *Portal) addUser(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	form := accountForm{Email: strings.TrimSpace(c.PostForm("email")), Name: c.PostForm("name"),
		Roles: c.PostFormArray("roles"), Disabled: c.PostForm("disabled") != ""}
	roles := form.Roles
	switch {
	case u.GetProvider() == "" && !has(u, "operator"):
		p.showUsers(c, http.StatusForbidden, msg("Your account may not manage accounts."), form)
		return
	case len(roles) == 0:
		p.showUsers(c, http.StatusBadRequest, msg("Give the account at least one role."), form)
		return
	case slices.ContainsFunc(roles, func(r string) bool { return !slices.Contains(grantable(u), r) }):
		p.showUsers(c, http.StatusForbidden, p.tr(c, "You may give only roles you hold yourself: %s.", strings.Join(grantable(u), ", ")), form)
		return
	}
	email := strings.ToLower(strings.TrimSpace(c.PostForm("email")))
	old, exists := p.region.FSM().User(email)
	password := c.PostForm("password")
	switch {
	case exists && old.GetProvider() != u.GetProvider():
		p.showUsers(c, http.StatusForbidden, msg("That account belongs to someone else."), form)
		return
	case password != "" && len(password) < minPassword:
		p.showUsers(c, http.StatusBadRequest, msg("A password has at least 12 characters."), form)
		return
	case email == u.GetEmail() && form.Disabled:
		p.showUsers(c, http.StatusBadRequest, msg("You cannot disable your own account."), form)
		return
	}
	hash := old.GetPasswordHash() // a change without a password keeps it
	invite := password == "" && !exists
	if invite {
		password = randomToken() // nobody knows it: the invitation sets the password
	}
	if password != "" {
		release, ok := p.hashSlot()
		if !ok {
			p.showUsers(c, http.StatusTooManyRequests, busyHashing, form)
			return
		}
		hash = account.HashPassword(password)
		release()
	}
	// A change keeps the account's second factor: PUT_USER replaces it,
	// and a form without it would leave the password alone to sign in.
	// A change keeps an open invitation too.
	acct := &fsmpb.User{Email: email, Name: c.PostForm("name"), Provider: u.GetProvider(), Roles: roles, PasswordHash: hash,
		Disabled: c.PostForm("disabled") != "", TotpSecret: old.GetTotpSecret(), InviteHash: old.GetInviteHash(), InviteExpiresUnix: old.GetInviteExpiresUnix()}
	var err error
	if invite {
		err = p.invite(c, acct)
	} else {
		_, err = command.PutUser(c.Request.Context(), p.region, acct)
	}
	if err != nil {
		p.showUsers(c, http.StatusBadRequest, p.tr(c, "The account was not saved: %s", err.Error()), form)
		return
	}
	p.audit(c, "put account", email)
	notice := "saved"
	if invite {
		notice = "invited"
	}
	p.redirectAfterWrite(c, "/portal/users?notice="+notice)
}

// userAction disables, enables or unlocks an account of the manager's
// provider, or removes its second factor (a lost phone), from its row in
// the list, touching nothing else of it.
func (p *Portal) userAction(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	email, action := c.PostForm("email"), c.PostForm("action")
	target, ok := p.region.FSM().User(email)
	switch {
	case !ok || target.GetProvider() != u.GetProvider() || u.GetProvider() == "" && !has(u, "operator"):
		p.showUsers(c, http.StatusNotFound, msg("There is no such account of yours."), accountForm{})
		return
	case target.GetEmail() == u.GetEmail() && action == "disable":
		p.showUsers(c, http.StatusBadRequest, msg("You cannot disable your own account."), accountForm{})
		return
	case (action == "invite" || action == "reset-totp") && slices.ContainsFunc(target.GetRoles(), func(r string) bool { return !slices.Contains(grantable(u), r) }):
		// A new password or no second factor would let the manager sign in
		// as an account that can do more than it can.
		p.showUsers(c, http.StatusForbidden, p.tr(c, "You may give a new password link or reset the second factor only of accounts whose roles you hold yourself: %s.", strings.Join(grantable(u), ", ")), accountForm{})
		return
	}
	var err error
	switch action {
	case "disable", "enable", "reset-totp":
		changed := proto.CloneOf(target)
		changed.LoginClients, changed.Failures, changed.LockedUntilUnix = nil, 0, 0 // the state machine keeps its own
		switch action {
		case "reset-totp":
			changed.TotpSecret = nil // the worker sets up a new one on their account page
		default:
			changed.Disabled = action == "disable"
		}
		_, err = command.PutUser(c.Request.Context(), p.region, changed)
	case "unlock":
		_, err = command.Login(c.Request.Context(), p.region, &fsmpb.Login{Email: target.GetEmail(), Unlock: true})
	case "invite": // a new link, which replaces any before it: for a worker who never set a password, or forgot it
		changed := proto.CloneOf(target)
		changed.LoginClients, changed.Failures, changed.LockedUntilUnix = nil, 0, 0
		if err = p.invite(c, changed); err == nil {
			p.audit(c, "invite account", target.GetEmail())
			p.redirectAfterWrite(c, "/portal/users?notice=invited")
			return
		}
	default:
		p.showUsers(c, http.StatusBadRequest, msg("Unknown action."), accountForm{})
		return
	}
	if err != nil {
		p.showUsers(c, http.StatusServiceUnavailable, p.tr(c, "The account was not changed: %s", err.Error()), accountForm{})
		return
	}
	p.audit(c, action+" account", target.GetEmail())
	p.redirectAfterWrite(c, "/portal/users?notice="+action)
}
