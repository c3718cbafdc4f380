package fsm_test

import (
	"bytes"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func revokeCmd(t int64, rv *fsmpb.Revoke) *fsmpb.Command {
	if rv.Reason == "" {
		rv.Reason = "test"
	}
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE, TimeUnix: t, Revoke: rv}
}

// A rolled-back submission's published keys appear as REVOKED in the next
// batch; its unpublished keys are never published; the reason is kept.
func TestRevokeSubmission(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	f := fsm.New()
	mustApply(t, f, publish(1, now-100, dayKey(1, today-2), dayKey(2, today-1)))
	mustApply(t, f, sealCmd(1, now, 0, 0))
	mustApply(t, f, publish(2, now+10, dayKey(3, today-3), dayKey(4, today)))
	mustApply(t, f, publish(3, now+10, dayKey(5, today-3)))

	res := mustApply(t, f, revokeCmd(now+20, &fsmpb.Revoke{Reason: "fraudulent upload", SubmissionId: subID(1)})).GetRevoke()
	if res.Revoked != 2 {
		t.Fatalf("revoked %d, want 2", res.Revoked)
	}
	res = mustApply(t, f, revokeCmd(now+21, &fsmpb.Revoke{SubmissionId: subID(2)})).GetRevoke()
	if res.Revoked != 2 {
		t.Fatalf("revoked %d, want 2", res.Revoked)
	}
	if again := mustApply(t, f, revokeCmd(now+22, &fsmpb.Revoke{SubmissionId: subID(1)})).GetRevoke(); again.Revoked != 0 {
		t.Fatalf("revoking again counted %d", again.Revoked)
	}
	seal := mustApply(t, f, sealCmd(2, now+2*day*600, 0, 0)).GetSeal()
	if seal.Keys != 1 || seal.Revised != 2 {
		t.Fatalf("seal after revocation: %+v (want only submission 3's key and 2 revisions)", seal)
	}
	keys, revised, _ := f.BatchKeys(2)
	if len(keys) != 1 || !bytes.Equal(keys[0].Data[:], tekBytes(5)) {
		t.Fatalf("batch 2 keys %v", keys)
	}
	for _, k := range revised {
		if k.ReportType != fsm.ReportTypeRevoked || !(bytes.Equal(k.Data[:], tekBytes(1)) || bytes.Equal(k.Data[:], tekBytes(2))) {
			t.Fatalf("revised key %+v", k)
		}
	}
	revs := f.Revocations()
	if len(revs) != 3 || revs[0].GetReason() != "fraudulent upload" || revs[0].GetKeys() != 2 {
		t.Fatalf("revocation records %v", revs)
	}
}

// Bad revocations are refused and change nothing.
func TestRevokeRefusals(t *testing.T) {
	now := int64(1_800_000_000)
	f := fsm.New()
	mustApply(t, f, publish(1, now, pkey(1), pkey(2)))
	cases := []struct {
		name string
		rv   *fsmpb.Revoke
		code command.Code
	}{
		{"no selector", &fsmpb.Revoke{}, command.CodeInvalidCommand},
		{"two selectors", &fsmpb.Revoke{SubmissionId: subID(1), Keys: [][]byte{tekBytes(1)}}, command.CodeInvalidCommand},
		{"unknown submission", &fsmpb.Revoke{SubmissionId: subID(9)}, command.CodeUnknownSubmission},
		{"short submission id", &fsmpb.Revoke{SubmissionId: []byte{1}}, command.CodeUnknownSubmission},
		{"one unknown key", &fsmpb.Revoke{Keys: [][]byte{tekBytes(1), tekBytes(99)}}, command.CodeUnknownKey},
		{"unknown issuer", &fsmpb.Revoke{Issuer: "nobody"}, command.CodeUnknownAuthority},
	}
	for _, tc := range cases {
		before := freeze(t, f)
		if code := codeOf(applyCmd(t, f, revokeCmd(now, tc.rv)).Err); code != tc.code {
			t.Fatalf("%s: code %q, want %q", tc.name, code, tc.code)
		}
		assertUnchanged(t, f, before)
	}
	noReason := revokeCmd(now, &fsmpb.Revoke{SubmissionId: subID(1)})
	noReason.Revoke.Reason = ""
	if code := codeOf(applyCmd(t, f, noReason).Err); code != command.CodeInvalidCommand {
		t.Fatalf("no reason: %q", code)
	}
}

// Revoking by issuer takes only what it authorized since the given time.
func TestRevokeIssuerSince(t *testing.T) {
	now := int64(1_800_000_000)
	f := fsm.New()
	mustApply(t, f, publish(1, now-100, pkey(1)))
	mustApply(t, f, publish(2, now, pkey(2), pkey(3)))
	res := mustApply(t, f, revokeCmd(now+1, &fsmpb.Revoke{Issuer: "https://ha.example.org", SinceUnix: now})).GetRevoke()
	if res.Revoked != 2 {
		t.Fatalf("revoked %d, want the 2 keys of submission 2", res.Revoked)
	}
	for n, want := range map[uint64]bool{1: false, 2: true, 3: true} {
		got := f.Keys(func(k fsm.Key) bool { return bytes.Equal(k.Data[:], tekBytes(n)) })[0].Revoked
		if got != want {
			t.Fatalf("key %d revoked=%v, want %v", n, got, want)
		}
	}
}

// From version 5 a submission records the hour it came, not the second,
// and a roll-back "since" takes in the whole hour it falls in: what the
// second hid is never needed to roll back, and never kept. Version 4
// entries keep their second.
func TestSubmissionsKnowTheirHour(t *testing.T) {
	hour := int64(1_800_000_000 - 1_800_000_000%fsm.SubmissionTimeStep)
	for _, tc := range []struct {
		version  uint32
		recorded int64
		revoked  uint32
	}{
		{4, hour + 1799, 0},
		{command.HourlySubmissions, hour, 1},
	} {
		f := fsm.New()
		up := publishV2(1, hour+1799, nil, pkey(1))
		up.Version = tc.version
		mustApply(t, f, putAuthority("https://ha.example.org", "aud", []string{"app"}, akey("k1", 0, 0)))
		mustApply(t, f, up)
		if sub, _ := f.Submission(0); sub.TimeUnix != tc.recorded {
			t.Fatalf("v%d: a submission at %d recorded %d, want %d", tc.version, hour+1799, sub.TimeUnix, tc.recorded)
		}
		rv := revokeCmd(hour+1900, &fsmpb.Revoke{Issuer: "https://ha.example.org", SinceUnix: hour + 1800})
		rv.Version = tc.version
		if got := mustApply(t, f, rv).GetRevoke().GetRevoked(); got != tc.revoked {
			t.Fatalf("v%d: since half past the hour revoked %d keys, want %d", tc.version, got, tc.revoked)
		}
	}
}

// Expiry removes old batches with their keys and submissions and old
// unpublished keys; what remains survives a snapshot round trip, including
// revocations still to publish.
func TestExpire(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	f := fsm.New()
	mustApply(t, f, publish(1, now-100, dayKey(1, today-20), dayKey(2, today-20)))
	mustApply(t, f, sealCmd(1, now, 0, 0))
	later := now + 3*day*600
	mustApply(t, f, publish(2, later-100, dayKey(3, today+1)))
	mustApply(t, f, sealCmd(2, later, 0, 0))
	mustApply(t, f, publish(3, later, dayKey(4, today-18))) // too old, never sealed here
	mustApply(t, f, publish(4, later, dayKey(5, today+3)))  // still valid
	mustApply(t, f, revokeCmd(later, &fsmpb.Revoke{Keys: [][]byte{tekBytes(3)}}))
	bad := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, TimeUnix: later, Expire: &fsmpb.Expire{CutoffUnix: later + 1}}
	if code := codeOf(applyCmd(t, f, bad).Err); code != command.CodeInvalidCommand {
		t.Fatalf("future cutoff: %q", code)
	}
	cmd := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, TimeUnix: later + 10,
		Expire: &fsmpb.Expire{CutoffUnix: now + 1}}
	res := mustApply(t, f, cmd).GetExpire()
	if res.Batches != 1 || res.Keys != 3 || res.Submissions != 2 {
		t.Fatalf("expire: %+v (want batch 1, keys 1, 2 and the unpublished old key 4, submissions 1 and 3)", res)
	}
	if f.NumKeys() != 2 || len(f.Batches()) != 1 || f.LastBatch() != 2 {
		t.Fatalf("after expiry: %d keys, %d batches, last %d", f.NumKeys(), len(f.Batches()), f.LastBatch())
	}
	if _, ok := f.Submission(0); ok {
		t.Fatal("submission 0 still there")
	}
	g := fsm.New()
	snap := snapshotBytes(t, f)
	if err := restoreBytes(g, snap); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*fsm.FSM{f, g} {
		seal := mustApply(t, x, sealCmd(3, later+day*600, 0, 0)).GetSeal()
		if seal.Revised != 1 || seal.Seq != 3 {
			t.Fatalf("seal after restore: %+v", seal)
		}
	}
	if !bytes.Equal(snapshotBytes(t, f), snapshotBytes(t, g)) {
		t.Fatal("restored state diverged")
	}
}
