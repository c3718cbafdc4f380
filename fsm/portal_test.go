package fsm_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func putUser(email, provider, hash string, roles ...string) *fsmpb.Command {
	return &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_PUT_USER, TimeUnix: vt0,
		PutUser: &fsmpb.User{Email: email, Name: "N", Provider: provider, Roles: roles, PasswordHash: hash}}
}

func login(email string, ok bool, at int64) *fsmpb.Command {
	return &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_LOGIN, TimeUnix: at, Login: &fsmpb.Login{Email: email, Ok: ok}}
}

// Accounts: the rules of who may hold what; five refused sign-ins lock an
// account for 15 minutes; a new password or a sign-out ends sessions.
func TestPortalAccounts(t *testing.T) {
	f := verificationFSM(t)
	const h = "$argon2id$v=19$m=65536,t=1,p=2$salt$hash"
	for name, tc := range map[string]struct {
		cmd  *fsmpb.Command
		want command.Code
	}{
		"no email":                 {putUser("worker", "lab", h, "issue"), command.CodeInvalidCommand},
		"a plain password":         {putUser("w@lab.example", "lab", "hunter2", "issue"), command.CodeInvalidCommand},
		"unknown provider":         {putUser("w@lab.example", "nobody", h, "issue"), command.CodeUnknownProvider},
		"unknown role":             {putUser("w@lab.example", "lab", h, "root"), command.CodeInvalidCommand},
		"a provider's operator":    {putUser("w@lab.example", "lab", h, "operator"), command.CodeInvalidCommand},
		"region operator, allowed": {putUser("ops@region.example", "", h, "operator"), ""},
	} {
		if code := codeOf(applyCmd(t, f, tc.cmd).Err); code != tc.want {
			t.Errorf("%s: %q, want %q", name, code, tc.want)
		}
	}
	u := mustApply(t, f, putUser("W@Lab.example", "lab", h, "issue", "codes")).GetUser()
	if u.GetEmail() != "w@lab.example" || u.GetCreatedUnix() != vt0 {
		t.Fatalf("account %v", u)
	}
	if code := codeOf(applyCmd(t, f, putUser("w@lab.example", "clinic", h, "issue")).Err); code != command.CodeInvalidCommand {
		t.Fatalf("moving an account to another provider: %q", code)
	}
	for i := range fsm.MaxLoginFailures - 1 {
		mustApply(t, f, login("w@lab.example", false, vt0+int64(i)))
	}
	u = mustApply(t, f, login("w@lab.example", false, vt0+10)).GetUser()
	if u.GetLockedUntilUnix() != vt0+10+fsm.LockoutSeconds {
		t.Fatalf("after five failures: %v", u)
	}
	u = mustApply(t, f, login("w@lab.example", true, vt0+2000)).GetUser()
	if u.GetLockedUntilUnix() != 0 || u.GetFailures() != 0 {
		t.Fatalf("after a success: %v", u)
	}
	epoch := u.GetSessionEpoch()
	u = mustApply(t, f, putUser("w@lab.example", "lab", h+"2", "issue")).GetUser()
	if u.GetSessionEpoch() != epoch+1 {
		t.Fatal("a new password did not end the sessions")
	}
	mustApply(t, f, &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_AUDIT, Audit: &fsmpb.AuditEvent{Actor: "w@lab.example", Provider: "lab", Action: "issue code", Target: "u1"}})
	lab, _ := f.Audit(fsm.AuditQuery{Provider: "lab", Limit: 10})
	if clinic, _ := f.Audit(fsm.AuditQuery{Provider: "clinic", Limit: 10}); len(lab) != 1 || lab[0].GetAction() != "issue code" || len(clinic) != 0 {
		t.Fatalf("audit %v", lab)
	}
	g := fsm.New()
	snap := snapshotBytes(t, f)
	if err := restoreBytes(g, snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Fatal("accounts and audit log do not round-trip")
	}
}

// From version 5 refused sign-ins count per client: five lock that client
// out only, twenty from any clients lock the account, a success clears the
// client's count and the account's, and an account counts at most 16
// clients (the least recent goes).
func TestSignInCountsPerClient(t *testing.T) {
	f := verificationFSM(t)
	mustApply(t, f, putUser("w@lab.example", "lab", "$argon2id$v=19$m=65536,t=1,p=2$salt$hash", "issue"))
	from := func(client string, ok bool, at int64) *fsmpb.Command {
		c := login("w@lab.example", ok, at)
		c.Version, c.Login.Client = command.SignInPerClient, []byte(client)
		return c
	}
	at := vt0 + 100
	for range fsm.MaxLoginFailures {
		at++
		mustApply(t, f, from("a", false, at))
	}
	u, _ := f.User("w@lab.example")
	if a, account := fsm.SignInLocked(u, []byte("a"), at); !a || account {
		t.Fatalf("five failures from a: a locked %v, account locked %v", a, account)
	}
	if b, _ := fsm.SignInLocked(u, []byte("b"), at); b {
		t.Fatal("five failures from a locked b out")
	}
	if _, account := fsm.SignInLocked(u, []byte("b"), at); account {
		t.Fatal("five failures locked the account")
	}
	for i := range fsm.MaxAccountFailures - fsm.MaxLoginFailures {
		at++
		mustApply(t, f, from(fmt.Sprintf("c%02d", i), false, at))
	}
	u, _ = f.User("w@lab.example")
	if _, account := fsm.SignInLocked(u, []byte("z"), at); !account {
		t.Fatalf("%d failures from many clients did not lock the account: %v", fsm.MaxAccountFailures, u)
	}
	at++
	u = mustApply(t, f, from("c15", false, at)).GetUser() // a seventeenth client
	if n := len(u.GetLoginClients()); n != 16 {
		t.Fatalf("%d clients kept, want 16", n)
	}
	if slices.ContainsFunc(u.GetLoginClients(), func(c *fsmpb.LoginClient) bool { return string(c.GetClient()) == "a" }) {
		t.Fatal("the least recent client was kept past the bound")
	}
	u = mustApply(t, f, from("c14", true, at+1)).GetUser()
	if _, account := fsm.SignInLocked(u, []byte("z"), at+1); account || u.GetFailures() != 0 || len(u.GetLoginClients()) != 15 {
		t.Fatalf("after a success: %v", u)
	}
	unlock := from("", false, at+2)
	unlock.Login.Unlock = true
	if u = mustApply(t, f, unlock).GetUser(); len(u.GetLoginClients()) != 0 || u.GetFailures() != 0 {
		t.Fatalf("after an unlock: %v", u)
	}
}

// The audit log's filters (provider, actor in any case, action, UTC day)
// and pages, newest first.
func TestAuditQuery(t *testing.T) {
	f := fsm.New()
	const day = 86400 * 20_000 // a UTC midnight
	events := []struct {
		at                      int64
		actor, provider, action string
	}{
		{day - 10, "a@lab.example", "lab", "issue code"},
		{day + 10, "a@lab.example", "lab", "issue code"},
		{day + 20, "b@lab.example", "lab", "expire code"},
		{day + 30, "c@clinic.example", "clinic", "issue code"},
		{day + 40, "A@lab.example", "lab", "issue code"},
		{day + 86400, "a@lab.example", "lab", "sign in"},
	}
	for _, e := range events {
		mustApply(t, f, &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_AUDIT, TimeUnix: e.at,
			Audit: &fsmpb.AuditEvent{Actor: e.actor, Provider: e.provider, Action: e.action, Target: "x"}})
	}
	for _, tc := range []struct {
		name string
		q    fsm.AuditQuery
		want []int64 // the events' times, newest first
		more bool
	}{
		{"everything", fsm.AuditQuery{Provider: "*", Limit: 10}, []int64{day + 86400, day + 40, day + 30, day + 20, day + 10, day - 10}, false},
		{"one provider", fsm.AuditQuery{Provider: "clinic", Limit: 10}, []int64{day + 30}, false},
		{"one actor, any case", fsm.AuditQuery{Provider: "lab", Actor: "a@LAB.example", Limit: 10}, []int64{day + 86400, day + 40, day + 10, day - 10}, false},
		{"one action on one day", fsm.AuditQuery{Provider: "*", Action: "issue code", Day: day, Limit: 10}, []int64{day + 40, day + 30, day + 10}, false},
		{"a first page", fsm.AuditQuery{Provider: "lab", Limit: 2}, []int64{day + 86400, day + 40}, true},
		{"the last page", fsm.AuditQuery{Provider: "lab", Skip: 4, Limit: 2}, []int64{day - 10}, false},
		{"a full last page", fsm.AuditQuery{Provider: "lab", Skip: 3, Limit: 2}, []int64{day + 10, day - 10}, false},
	} {
		got, more := f.Audit(tc.q)
		var times []int64
		for _, e := range got {
			times = append(times, e.GetTimeUnix())
		}
		if !slices.Equal(times, tc.want) || more != tc.more {
			t.Errorf("%s: %v (more %v), want %v (more %v)", tc.name, times, more, tc.want, tc.more)
		}
	}
	if got := f.AuditActions("lab"); !slices.Equal(got, []string{"expire code", "issue code", "sign in"}) {
		t.Errorf("the lab's actions: %v", got)
	}
}

// An invitation sets its account's password once, while it is open and
// unexpired and the account enabled; a new invitation replaces the old
// one; taking it ends the account's sessions and clears its lockout.
func TestAcceptInvite(t *testing.T) {
	f := fsm.New()
	mustApply(t, f, putProvider("lab"))
	invite := func(email, token string, expires int64, disabled bool) *fsmpb.Command {
		cmd := putUser(email, "lab", "$argon2id$unknown", "issue")
		cmd.Version = command.Invitations
		cmd.PutUser.InviteHash, cmd.PutUser.InviteExpiresUnix, cmd.PutUser.Disabled = hashOf(token), expires, disabled
		return cmd
	}
	accept := func(email, token string, at int64) *fsmpb.Command {
		return &fsmpb.Command{Version: command.Invitations, Type: fsmpb.CommandType_COMMAND_TYPE_ACCEPT_INVITE, TimeUnix: at,
			AcceptInvite: &fsmpb.AcceptInvite{Email: email, InviteHash: hashOf(token), PasswordHash: "$argon2id$chosen"}}
	}
	mustApply(t, f, invite("a@lab.example", "first", vt0+3600, false))
	mustApply(t, f, invite("a@lab.example", "second", vt0+3600, false)) // a new link replaces the first
	mustApply(t, f, invite("b@lab.example", "b", vt0+3600, true))
	mustApply(t, f, invite("c@lab.example", "c", vt0+60, false))
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
	}{
		{"a replaced invitation", accept("a@lab.example", "first", vt0+10)},
		{"another account's invitation", accept("b@lab.example", "second", vt0+10)},
		{"a disabled account", accept("b@lab.example", "b", vt0+10)},
		{"an expired invitation", accept("c@lab.example", "c", vt0+60)},
		{"no such account", accept("x@lab.example", "second", vt0+10)},
	} {
		if got := codeOf(applyCmd(t, f, tc.cmd).Err); got != command.CodeInviteInvalid {
			t.Errorf("%s: %q, want %s", tc.name, got, command.CodeInviteInvalid)
		}
	}
	before, _ := f.User("a@lab.example")
	u := mustApply(t, f, accept("A@lab.example", "second", vt0+10)).GetUser()
	if u.GetPasswordHash() != "$argon2id$chosen" || len(u.GetInviteHash()) != 0 || u.GetSessionEpoch() != before.GetSessionEpoch()+1 {
		t.Fatalf("the accepted account: %v", u)
	}
	if got := codeOf(applyCmd(t, f, accept("a@lab.example", "second", vt0+20)).Err); got != command.CodeInviteInvalid {
		t.Fatalf("the invitation used a second time: %q", got)
	}
	if _, ok := f.UserByInvite(hashOf("second")); ok {
		t.Fatal("a used invitation still finds its account")
	}
}
