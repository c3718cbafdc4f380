package fsm_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func setService(windDown, deleteAfter int64) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_SERVICE,
		SetService: &fsmpb.SetService{WindDownUnix: windDown, DeleteAfterSeconds: deleteAfter, Author: "ops@region.example"}}
}

func cancelService() *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_SERVICE, SetService: &fsmpb.SetService{Cancel: true}}
}

func expireBefore(cutoff int64) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, Expire: &fsmpb.Expire{CutoffUnix: cutoff}}
}

// serviceRegion is a region with an app configuration, a provider with an
// API key and a worker, an operator, and one upload of a key of two days
// ago and one of today (which waits for its day to end).
func serviceRegion(t *testing.T, t0 int64, today int32) *fsm.FSM {
	t.Helper()
	f := fsm.New()
	for _, c := range at(t0-60, putAuthority(haIssuer, "aud", []string{"app"}, akey("k1", 0, 0)), putProvider("lab"),
		&fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_API_KEY, PutApiKey: &fsmpb.ApiKey{Hash: hashOf("lab-key"), Name: "lab-key", Kind: fsm.APIKeyAdmin, Provider: "lab"}},
		putUser("w@lab.example", "lab", "$argon2id$v=19$m=65536,t=1,p=2$salt$hash", "issue"),
		putUser("op@region.example", "", "$argon2id$v=19$m=65536,t=1,p=2$salt$hash", "operator"),
		setAppConfig(validAppConfig()), publishV2(1, 0, nil, dayKey(1, today-2), dayKey(2, today))) {
		mustApply(t, f, c)
	}
	return f
}

// currentStatus is the app configuration in force's service status and
// version.
func currentStatus(t *testing.T, f *fsm.FSM) (fsmpb.ServiceStatus, uint32, int64) {
	t.Helper()
	c, ok := f.AppConfig(0)
	if !ok {
		t.Fatal("no app configuration")
	}
	return c.GetServiceStatus(), c.GetVersion(), c.GetWindDownUnix()
}

// A region through its whole end: scheduled (apps told the date, uploads
// still taken), winding down from the date (uploads, codes, their claims
// and imports refused with service_ended and nothing changed; seals go
// on), ended once its last batch aged out (the configuration says so, the
// end can no longer be moved), and its submissions, codes, API keys and
// workers' accounts deleted the days after, operators' accounts kept.
func TestEndOfService(t *testing.T) {
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	wind := t0 + 86_400
	f := serviceRegion(t, t0, today)

	svc := mustApply(t, f, at(t0, setService(wind, 7*86_400))[0]).GetService()
	if svc.GetWindDownUnix() != wind || svc.GetScheduledUnix() != t0 || svc.GetAuthor() != "ops@region.example" {
		t.Fatalf("scheduled: %v", svc)
	}
	if status, v, w := currentStatus(t, f); status != fsmpb.ServiceStatus_SERVICE_STATUS_ACTIVE || v != 2 || w != wind {
		t.Fatalf("after scheduling the configuration says %v (version %d, wind-down %d)", status, v, w)
	}
	mustApply(t, f, at(t0+60, publishV2(2, 0, nil, dayKey(3, today-1)))[0]) // still taken
	mustApply(t, f, at(t0+120, sealCmd(1, 0, 0, 0))[0])
	// Codes and a token that outlive the files, for the deletion to find.
	long := issueVCode("u8", "lab", "88888888", "long-eight", "confirmed", 0)
	long.IssueVerificationCode.LongTtlSeconds = 20 * 86_400
	claimed := issueVCode("u9", "lab", "99999999", "long-nine", "confirmed", 0)
	claim := claimCode("99999999", "t9", 0)
	claim.ClaimCode.TokenTtlSeconds = 20 * 86_400
	for _, c := range at(t0+180, long, claimed, claim) {
		mustApply(t, f, c)
	}

	before := freeze(t, f)
	for _, c := range at(wind, publishV2(3, 0, nil, dayKey(4, today-1)), issueVCode("u1", "lab", "11111111", "long-one", "confirmed", 0),
		claimCode("11111111", "t1", 0), claimToken("t1", 0), importEFGS(today*86_400, "20241004-1", "", efgsKey("DE", dayKey(6, today-2))),
		&fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_EXPORT, ImportExport: &fsmpb.ImportExport{Origin: "G"}},
		&fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH, ImportBatch: &fsmpb.ImportBatch{}}) {
		r := applyCmd(t, f, c)
		if codeOf(r.Err) != command.CodeServiceEnded || !strings.Contains(r.Err.Error(), "stopped taking uploads at") {
			t.Fatalf("%v at the wind-down: %v, want service_ended", c.GetType(), r.Err)
		}
	}
	assertUnchanged(t, f, before)

	mustApply(t, f, at(wind+60, expireBefore(t0-14*86_400))[0])
	if status, v, _ := currentStatus(t, f); status != fsmpb.ServiceStatus_SERVICE_STATUS_WINDING_DOWN || v != 3 {
		t.Fatalf("winding down, the configuration says %v (version %d)", status, v)
	}
	if s := mustApply(t, f, at(t0+2*86_400, sealCmd(2, 0, 0, 0))[0]).GetSeal(); s.GetKeys() != 1 {
		t.Fatalf("today's key sealed after its day: %v", s)
	}
	mustApply(t, f, at(t0+10*86_400, expireBefore(t0+200))[0]) // the first batch goes, the second stays
	if f.Service().GetEndedUnix() != 0 || len(f.Batches()) != 1 {
		t.Fatalf("ended with a batch left: %v, %d batches", f.Service(), len(f.Batches()))
	}

	end := t0 + 17*86_400
	mustApply(t, f, at(end, expireBefore(t0+3*86_400))[0])
	if f.Service().GetEndedUnix() != end || len(f.Batches()) != 0 {
		t.Fatalf("after the last batch aged out: %v, %d batches", f.Service(), len(f.Batches()))
	}
	if status, v, _ := currentStatus(t, f); status != fsmpb.ServiceStatus_SERVICE_STATUS_ENDED || v != 4 {
		t.Fatalf("ended, the configuration says %v (version %d)", status, v)
	}
	for _, c := range at(end+60, setService(end+86_400, 0), cancelService()) {
		if r := applyCmd(t, f, c); codeOf(r.Err) != command.CodeServiceOver {
			t.Fatalf("moving an ended service: %v, want service_over", r.Err)
		}
	}

	mustApply(t, f, at(end+7*86_400-1, expireBefore(t0+4*86_400))[0])
	if f.Service().GetDeletedUnix() != 0 {
		t.Fatal("deleted before its time")
	}
	mustApply(t, f, at(end+7*86_400, expireBefore(t0+4*86_400))[0])
	svc = f.Service()
	if svc.GetDeletedUnix() != end+7*86_400 || svc.GetDeletedAccounts() != 1 || svc.GetDeletedApiKeys() != 1 ||
		svc.GetDeletedCodes() != 1 || svc.GetDeletedTokens() != 1 {
		t.Fatalf("deletion: %v", svc)
	}
	if _, ok := f.VerificationCode("u8"); ok {
		t.Fatal("a code outlived the deletion")
	}
	if p, _ := f.Provider("lab"); len(p.GetTokenHash()) != 0 {
		t.Fatal("the provider's token outlived the deletion")
	}
	// An account made afterwards goes at the next retention run; the
	// deletion keeps its first time.
	mustApply(t, f, at(end+8*86_400, putUser("late@lab.example", "lab", "$argon2id$v=19$m=65536,t=1,p=2$salt$hash", "issue"))[0])
	mustApply(t, f, at(end+8*86_400+60, expireBefore(t0+4*86_400))[0])
	if _, ok := f.User("late@lab.example"); ok || f.Service().GetDeletedUnix() != svc.GetDeletedUnix() || f.Service().GetDeletedAccounts() != 2 {
		t.Fatalf("after a late account: %v", f.Service())
	}
	svc = f.Service()
	if _, ok := f.User("w@lab.example"); ok {
		t.Fatal("the worker's account outlived the deletion")
	}
	if _, ok := f.User("op@region.example"); !ok {
		t.Fatal("the operator's account was deleted")
	}
	if len(f.APIKeys()) != 0 {
		t.Fatalf("API keys left: %v", f.APIKeys())
	}
	restored := fsm.New()
	if err := restoreBytes(restored, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, restored), snapshotBytes(t, f)) || restored.Service().GetDeletedUnix() != svc.GetDeletedUnix() {
		t.Fatalf("restored service: %v", restored.Service())
	}
}

// An end scheduled or under way is moved or cancelled until the service
// has ended: a cancel takes uploads again and tells apps; a wind-down time
// already past is the command's; bad requests change nothing.
func TestEndOfServiceMovedAndCancelled(t *testing.T) {
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	f := serviceRegion(t, t0, today)
	before := freeze(t, f)
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
		code command.Code
		says string
	}{
		{"nothing to cancel", cancelService(), command.CodeInvalidCommand, "no end of service is scheduled"},
		{"no time", setService(0, 0), command.CodeInvalidCommand, "wind_down_unix"},
		{"deletion after two years", setService(t0+86_400, 2*366*86_400), command.CodeInvalidCommand, "delete_after_seconds"},
		{"deletion before the end", setService(t0+86_400, -1), command.CodeInvalidCommand, "delete_after_seconds"},
	} {
		r := applyCmd(t, f, at(t0, tc.cmd)[0])
		if codeOf(r.Err) != tc.code || !strings.Contains(r.Err.Error(), tc.says) {
			t.Fatalf("%s: %v, want %s saying %q", tc.name, r.Err, tc.code, tc.says)
		}
	}
	assertUnchanged(t, f, before)

	if svc := mustApply(t, f, at(t0, setService(t0-86_400, 0))[0]).GetService(); svc.GetWindDownUnix() != t0 {
		t.Fatalf("a past wind-down: %v, want the command's time", svc)
	}
	if r := applyCmd(t, f, at(t0+1, publishV2(2, 0, nil, dayKey(3, today-1)))[0]); codeOf(r.Err) != command.CodeServiceEnded {
		t.Fatalf("upload while winding down: %v", r.Err)
	}
	mustApply(t, f, at(t0+2, cancelService())[0])
	if status, _, w := currentStatus(t, f); status != fsmpb.ServiceStatus_SERVICE_STATUS_ACTIVE || w != 0 || f.Service().GetWindDownUnix() != 0 {
		t.Fatalf("after the cancel: %v, wind-down %d", status, w)
	}
	mustApply(t, f, at(t0+3, publishV2(2, 0, nil, dayKey(3, today-1)))[0])
	if svc := mustApply(t, f, at(t0+4, setService(t0+86_400, 0))[0]).GetService(); svc.GetWindDownUnix() != t0+86_400 {
		t.Fatalf("scheduled again: %v", svc)
	}
	if svc := mustApply(t, f, at(t0+5, setService(t0+2*86_400, 86_400))[0]).GetService(); svc.GetWindDownUnix() != t0+2*86_400 || svc.GetDeleteAfterSeconds() != 86_400 {
		t.Fatalf("moved: %v", svc)
	}
	// Under way, the same request sent again (its time now past) moves
	// nothing apps see; only the deletion's delay changes.
	_, version, _ := currentStatus(t, f)
	svc := mustApply(t, f, at(t0+2*86_400+3600, setService(t0+2*86_400, 2*86_400))[0]).GetService()
	if _, again, _ := currentStatus(t, f); svc.GetWindDownUnix() != t0+2*86_400 || svc.GetDeleteAfterSeconds() != 2*86_400 || again != version+1 {
		t.Fatalf("sent again while winding down: %v, configuration %d after %d", svc, again, version)
	}
}
