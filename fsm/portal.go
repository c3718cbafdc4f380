package fsm

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Sign-in limits of portal accounts.
const (
	// MaxLoginFailures refused sign-ins lock an account for LockoutSeconds
	// (before version 5), or from version 5 lock out the one client that
	// made them.
	MaxLoginFailures = 5
	LockoutSeconds   = 15 * 60
	// MaxAccountFailures refused sign-ins from any clients lock the account
	// (from version 5), except to the right password with the right second
	// factor, so that strangers cannot keep a worker with TOTP out.
	MaxAccountFailures = 20
	// maxLoginClients bounds the clients an account counts.
	maxLoginClients = 16
	maxAuditAction  = 200
)

// Roles a portal account may hold.
var userRoles = []string{"issue", "bulk", "codes", "users", "apikeys", "operator"}

// applyPutUser creates a portal account or replaces what an operator or
// provider admin may change; sign-in counters stay, and a new password
// ends the account's sessions.
func applyPutUser(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	u := proto.CloneOf(cmd.GetPutUser())
	if u == nil {
		return refuse(command.CodeInvalidCommand, "no account given")
	}
	u.Email = strings.ToLower(u.GetEmail())
	switch p, ok := s.providers[u.GetProvider()]; {
	case !strings.Contains(u.GetEmail(), "@") || len(u.GetEmail()) > 254:
		return refuse(command.CodeInvalidCommand, "an account needs an email address")
	case !strings.HasPrefix(u.GetPasswordHash(), "$argon2id$"):
		return refuse(command.CodeInvalidCommand, "an account needs an argon2id password hash")
	case u.GetProvider() != "" && (!ok || p.GetRevoked()):
		return refuse(command.CodeUnknownProvider, "no active provider %q", u.GetProvider())
	case slices.ContainsFunc(u.GetRoles(), func(r string) bool { return !slices.Contains(userRoles, r) }):
		return refuse(command.CodeInvalidCommand, "roles %v: known roles are %v", u.GetRoles(), userRoles)
	case u.GetProvider() != "" && slices.Contains(u.GetRoles(), "operator"):
		return refuse(command.CodeInvalidCommand, "only region accounts (no provider) may be operators")
	}
	old := s.users[u.GetEmail()]
	if old != nil && old.GetProvider() != u.GetProvider() {
		return refuse(command.CodeInvalidCommand, "account %s belongs to another provider", u.GetEmail())
	}
	u.Failures, u.LockedUntilUnix, u.SessionEpoch, u.CreatedUnix = old.GetFailures(), old.GetLockedUntilUnix(), old.GetSessionEpoch(), old.GetCreatedUnix()
	u.LoginClients = old.GetLoginClients()
	if old == nil {
		u.CreatedUnix = cmd.GetTimeUnix()
	} else if old.GetPasswordHash() != u.GetPasswordHash() || u.GetDisabled() {
		u.SessionEpoch++
	}
	slices.Sort(u.Roles)
	s.users[u.GetEmail()] = u
	return &fsmpb.Result{Value: &fsmpb.Result_User{User: proto.CloneOf(u)}}
}

// applyAcceptInvite sets an invited account's password, once: the
// invitation must be open, unexpired and the account's, and the account
// enabled. It ends the account's sessions and clears its sign-in counts.
func applyAcceptInvite(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	a, now := cmd.GetAcceptInvite(), cmd.GetTimeUnix()
	u := s.users[strings.ToLower(a.GetEmail())]
	switch {
	case u == nil || len(u.GetInviteHash()) == 0 || !bytes.Equal(u.GetInviteHash(), a.GetInviteHash()) ||
		now >= u.GetInviteExpiresUnix() || u.GetDisabled():
		return refuse(command.CodeInviteInvalid, "this invitation is used, replaced, expired or not of this account")
	case !strings.HasPrefix(a.GetPasswordHash(), "$argon2id$"):
		return refuse(command.CodeInvalidCommand, "an account needs an argon2id password hash")
	}
	u = proto.CloneOf(u)
	u.PasswordHash, u.InviteHash, u.InviteExpiresUnix = a.GetPasswordHash(), nil, 0
	u.Failures, u.LockedUntilUnix, u.LoginClients = 0, 0, nil
	u.SessionEpoch++
	s.users[u.GetEmail()] = u
	return &fsmpb.Result{Value: &fsmpb.Result_User{User: proto.CloneOf(u)}}
}

// UserByInvite finds the account whose open invitation has this hash.
func (f *FSM) UserByInvite(hash []byte) (*fsmpb.User, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, u := range f.state.users {
		if len(hash) > 0 && bytes.Equal(u.GetInviteHash(), hash) {
			return proto.CloneOf(u), true
		}
	}
	return nil, false
}

// applyLogin counts a refused sign-in (locking the account at the fifth),
// clears the count on success, or ends every session of the account.
func applyLogin(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	l, now := cmd.GetLogin(), cmd.GetTimeUnix()
	u := s.users[strings.ToLower(l.GetEmail())]
	if u == nil {
		return refuse(command.CodeUnknownUser, "no account %q", l.GetEmail())
	}
	u = proto.CloneOf(u)
	perClient := cmd.GetVersion() >= command.SignInPerClient
	switch {
	case l.GetEndSessions():
		u.SessionEpoch++
	case l.GetUnlock() && perClient:
		u.Failures, u.LockedUntilUnix, u.LoginClients = 0, 0, nil
	case l.GetOk():
		u.Failures, u.LockedUntilUnix = 0, 0
		u.LoginClients = slices.DeleteFunc(u.LoginClients, func(c *fsmpb.LoginClient) bool { return slices.Equal(c.GetClient(), l.GetClient()) })
	case perClient:
		countFailure(&u.Failures, &u.LockedUntilUnix, MaxAccountFailures, now)
		c := loginClient(u, l.GetClient(), now)
		countFailure(&c.Failures, &c.LockedUntilUnix, MaxLoginFailures, now)
	default:
		countFailure(&u.Failures, &u.LockedUntilUnix, MaxLoginFailures, now)
	}
	s.users[u.GetEmail()] = u
	return &fsmpb.Result{Value: &fsmpb.Result_User{User: proto.CloneOf(u)}}
}

// countFailure counts a refused sign-in; the max-th locks until
// LockoutSeconds from now and starts the count again.
func countFailure(failures *uint32, lockedUntil *int64, max uint32, now int64) {
	if *failures++; *failures >= max {
		*failures, *lockedUntil = 0, now+LockoutSeconds
	}
}

// loginClient is the account's entry for a client, made if there is none:
// past maxLoginClients the least recent entry goes (the lowest last time,
// then the lowest client hash).
func loginClient(u *fsmpb.User, client []byte, now int64) *fsmpb.LoginClient {
	i := slices.IndexFunc(u.GetLoginClients(), func(c *fsmpb.LoginClient) bool { return slices.Equal(c.GetClient(), client) })
	if i < 0 {
		if len(u.GetLoginClients()) >= maxLoginClients {
			oldest := slices.MinFunc(u.GetLoginClients(), func(a, b *fsmpb.LoginClient) int {
				return cmp.Or(cmp.Compare(a.GetLastUnix(), b.GetLastUnix()), slices.Compare(a.GetClient(), b.GetClient()))
			})
			u.LoginClients = slices.DeleteFunc(u.LoginClients, func(c *fsmpb.LoginClient) bool { return c == oldest })
		}
		u.LoginClients = append(u.LoginClients, &fsmpb.LoginClient{Client: slices.Clone(client)})
		i = len(u.LoginClients) - 1
	}
	c := u.LoginClients[i]
	c.LastUnix = now
	return c
}

// SignInLocked tells whether a sign-in from client is locked out of the
// account at now: the client itself, or (for the accounts of version 5,
// which count per client) the whole account, which still lets the right
// password with the right second factor through.
func SignInLocked(u *fsmpb.User, client []byte, now int64) (clientLocked, accountLocked bool) {
	for _, c := range u.GetLoginClients() {
		if slices.Equal(c.GetClient(), client) && now < c.GetLockedUntilUnix() {
			clientLocked = true
		}
	}
	return clientLocked, now < u.GetLockedUntilUnix()
}

// applyAudit appends an event to the audit log (kept for the retention).
func applyAudit(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	e := proto.CloneOf(cmd.GetAudit())
	if e.GetActor() == "" || e.GetAction() == "" || len(e.GetAction())+len(e.GetTarget()) > maxAuditAction*4 {
		return refuse(command.CodeInvalidCommand, "an audit event needs an actor and an action, and is short")
	}
	e.TimeUnix = cmd.GetTimeUnix()
	s.audit = append(s.audit, e)
	return &fsmpb.Result{}
}

// expireAudit drops audit events older than cutoff.
func (s *state) expireAudit(cutoff int64) {
	i := 0
	for i < len(s.audit) && s.audit[i].GetTimeUnix() < cutoff {
		i++
	}
	s.audit = slices.Clone(s.audit[i:])
}

// User returns a copy of the account with the given email.
func (f *FSM) User(email string) (*fsmpb.User, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u, ok := f.state.users[strings.ToLower(email)]
	return proto.CloneOf(u), ok
}

// Users returns copies of the accounts of a provider ("" for the region's
// operators, "*" for all), sorted by email.
func (f *FSM) Users(provider string) []*fsmpb.User {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*fsmpb.User
	for _, u := range f.state.users {
		if provider == "*" || u.GetProvider() == provider {
			out = append(out, proto.CloneOf(u))
		}
	}
	slices.SortFunc(out, func(a, b *fsmpb.User) int { return strings.Compare(a.GetEmail(), b.GetEmail()) })
	return out
}

// AuditQuery picks audit events: of a provider ("*": every one), and,
// where set, of one actor (any case), one action, one UTC day (its
// midnight, Unix seconds); Skip events that match are passed over and at
// most Limit returned, newest first.
type AuditQuery struct {
	Provider, Actor, Action string
	Day                     int64
	Skip, Limit             int
}

func (q AuditQuery) matches(e *fsmpb.AuditEvent) bool {
	return (q.Provider == "*" || e.GetProvider() == q.Provider) &&
		(q.Actor == "" || strings.EqualFold(e.GetActor(), q.Actor)) &&
		(q.Action == "" || e.GetAction() == q.Action) &&
		(q.Day == 0 || e.GetTimeUnix() >= q.Day && e.GetTimeUnix() < q.Day+86400)
}

// Audit returns the audit events the query picks, newest first, and
// whether older ones match too (a next page).
func (f *FSM) Audit(q AuditQuery) (events []*fsmpb.AuditEvent, more bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	skip := q.Skip
	for i := len(f.state.audit) - 1; i >= 0; i-- {
		e := f.state.audit[i]
		switch {
		case !q.matches(e):
		case skip > 0:
			skip--
		case len(events) == q.Limit:
			return events, true
		default:
			events = append(events, proto.CloneOf(e))
		}
	}
	return events, false
}

// AuditActions are the actions a provider's ("*": any) audit events name,
// sorted, for a filter's choices.
func (f *FSM) AuditActions(provider string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []string
	for _, e := range f.state.audit {
		if (provider == "*" || e.GetProvider() == provider) && !slices.Contains(out, e.GetAction()) {
			out = append(out, e.GetAction())
		}
	}
	slices.Sort(out)
	return out
}

// BulkRun returns the codes of a provider's bulk run, by line, for the
// run's page.
func (f *FSM) BulkRun(provider, run string) []*fsmpb.VerificationCode {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*fsmpb.VerificationCode
	for _, c := range f.state.vcodes {
		if run != "" && c.GetBulkRun() == run && c.GetProvider() == provider {
			out = append(out, proto.CloneOf(c))
		}
	}
	slices.SortFunc(out, func(a, b *fsmpb.VerificationCode) int {
		return cmp.Or(cmp.Compare(a.GetBulkLine(), b.GetBulkLine()), strings.Compare(a.GetUuid(), b.GetUuid()))
	})
	return out
}

// VerificationCodes returns the newest codes of a provider, newest first,
// at most n, for its portal pages.
func (f *FSM) VerificationCodes(provider string, n int) []*fsmpb.VerificationCode {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*fsmpb.VerificationCode
	for _, c := range f.state.vcodes {
		if c.GetProvider() == provider {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *fsmpb.VerificationCode) int {
		if a.GetIssuedUnix() != b.GetIssuedUnix() {
			return int(b.GetIssuedUnix() - a.GetIssuedUnix())
		}
		return strings.Compare(a.GetUuid(), b.GetUuid())
	})
	out = out[:min(n, len(out))]
	for i, c := range out {
		out[i] = proto.CloneOf(c)
	}
	return out
}

// VerificationCodesAll returns every kept code (shared records, not to be
// changed), for the operators' figures.
func (f *FSM) VerificationCodesAll() []*fsmpb.VerificationCode {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*fsmpb.VerificationCode, 0, len(f.state.vcodes))
	for _, c := range f.state.vcodes {
		out = append(out, c)
	}
	return out
}
