package fsm_test

import (
	"bytes"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// fixedSeal is a seal of a fixed size, as the leader's seal loop sends
// when the region pads by the day.
func fixedSeal(seq uint32, t int64, target uint32) *fsmpb.Command {
	cmd := sealCmd(seq, t, target, int(target))
	cmd.Version, cmd.Seal.FixedSize = command.Version, true
	return cmd
}

// A fixed-size seal holds exactly its target: the real keys that fit,
// oldest upload first, the rest waiting for the next; padding alone when
// none is due, copying the newest batch's keys; none before any key was
// published, nor from the wind-down.
func TestFixedSizeSeal(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	f := fsm.New()
	// Three uploads of 14 keys of past days: 42 keys due, upload 1 oldest.
	for n := uint64(1); n <= 3; n++ {
		var keys []*fsmpb.Key
		for d := range uint64(14) {
			keys = append(keys, dayKey(n*100+d, today-1-int32(d)))
		}
		mustApply(t, f, publish(n, now-int64(1000-n), keys...))
	}
	if got := f.Backlog(now); got != 42 {
		t.Fatalf("backlog %d, want 42", got)
	}
	inBatch := func(seq uint32) map[uint64]bool {
		keys, _, _ := f.BatchKeys(seq)
		out := map[uint64]bool{}
		for _, k := range keys {
			for n := uint64(100); n < 400; n++ {
				if bytes.Equal(k.Data[:], tekBytes(n)) {
					out[n/100] = true
				}
			}
		}
		return out
	}
	for _, tc := range []struct {
		seq                 uint32
		target              uint32
		keys, padding, left int
		uploads             []uint64
	}{
		{1, 20, 20, 0, 22, []uint64{1, 2}}, // all of upload 1, 6 of upload 2
		{2, 30, 22, 8, 0, []uint64{2, 3}},  // the rest, and padding
	} {
		res := mustApply(t, f, fixedSeal(tc.seq, now+int64(tc.seq), tc.target)).GetSeal()
		if int(res.Keys) != tc.keys || int(res.Padding) != tc.padding || f.Backlog(now) != tc.left {
			t.Fatalf("seal %d of %d: %d keys, %d padding, %d left; want %d, %d, %d", tc.seq, tc.target, res.Keys, res.Padding, f.Backlog(now), tc.keys, tc.padding, tc.left)
		}
		got := inBatch(tc.seq)
		for _, u := range tc.uploads {
			if !got[u] {
				t.Errorf("batch %d holds no key of upload %d, want uploads %v (oldest first)", tc.seq, u, tc.uploads)
			}
		}
		if len(got) != len(tc.uploads) {
			t.Errorf("batch %d holds keys of uploads %v, want %v", tc.seq, got, tc.uploads)
		}
	}
	// Nothing due: padding alone, copying the fields of batch 2's keys.
	res := mustApply(t, f, fixedSeal(3, now+10, 25)).GetSeal()
	if res.Keys != 0 || res.Padding != 25 {
		t.Fatalf("seal with nothing due: %+v, want 25 padding keys", res)
	}
	keys, _, _ := f.BatchKeys(3)
	for _, k := range keys {
		if k.RollingPeriod != day || k.RollingStart > (today-1)*day || k.RollingStart < (today-14)*day {
			t.Fatalf("padding key %+v does not look like the keys it copies", k)
		}
	}
	// A seal that is not of a fixed size still needs a key due.
	if code := codeOf(applyCmd(t, f, sealCmd(4, now+11, 25, 25)).Err); code != command.CodeNothingToSeal {
		t.Fatalf("seal of no fixed size with nothing due: %q", code)
	}
	// From the wind-down, no batch of padding alone: the service can end.
	mustApply(t, f, at(now+12, setService(now+20, 0))[0])
	before := freeze(t, f)
	if code := codeOf(applyCmd(t, f, fixedSeal(4, now+30, 25)).Err); code != command.CodeNothingToSeal {
		t.Fatalf("padding alone while winding down: %q", code)
	}
	assertUnchanged(t, f, before)

	// A region that never published a key has nothing to copy.
	empty := fsm.New()
	if code := codeOf(applyCmd(t, empty, fixedSeal(1, now, 25)).Err); code != command.CodeNothingToSeal {
		t.Fatalf("padding alone in a region with no key: %q", code)
	}
	// Before version 9 a fixed size is unknown: every key due is sealed.
	old := fsm.New()
	mustApply(t, old, publish(1, now-100, keysFrom(1, 1)[0], dayKey(2, today-1), dayKey(3, today-2)))
	cmd := fixedSeal(1, now, 1)
	cmd.Version = command.DayPadding - 1
	if res := mustApply(t, old, cmd).GetSeal(); res.Keys < 2 {
		t.Fatalf("a version 8 seal took %d keys, want every key due", res.Keys)
	}
}

// Which keys wait is decided from the upload numbers, not the pending
// list's order, so a node restored from a snapshot (whose pending keys
// are in key order) seals the same batch as one that applied the log.
func TestFixedSizeSealAfterRestore(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	live := fsm.New()
	for n := uint64(1); n <= 4; n++ {
		// Keys are hashes of their numbers: key order is not upload order.
		mustApply(t, live, publish(n, now-int64(100-n), dayKey(1000-n*10, today-1), dayKey(1000-n*10-1, today-2)))
	}
	restored := fsm.New()
	if err := restoreBytes(restored, snapshotBytes(t, live)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fsm.FSM{live, restored} {
		mustApply(t, f, fixedSeal(1, now, 3))
	}
	a, _, _ := live.BatchKeys(1)
	b, _, _ := restored.BatchKeys(1)
	if len(a) != 3 || len(a) != len(b) {
		t.Fatalf("batch of %d and %d keys, want 3", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("key %d: %x on the live node, %x on the restored one", i, a[i].Data, b[i].Data)
		}
	}
	if !bytes.Equal(snapshotBytes(t, live), snapshotBytes(t, restored)) {
		t.Fatal("the states differ after the same seal")
	}
}

// Revised keys count toward a fixed size, and a batch of revisions alone
// is padded to it like any other; keys merged from elsewhere come on top
// of it and count for no backlog (their origin published them); a batch of
// padding alone long after the last upload copies fields moved to the day
// before its seal, as fresh as an upload's keys.
func TestFixedSizeSealRevisionsMergesAndFreshness(t *testing.T) {
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	f := fsm.New()
	for _, c := range at(t0,
		putAuthority(haIssuer, "aud", []string{"app"}, akey("k1", 0, 0)),
		publishV2(1, t0, nil, dayKey(1, today-2), dayKey(2, today-3)),
		efgsCountry("FR"),
	) {
		mustApply(t, f, c)
	}
	mustApply(t, f, fixedSeal(1, t0, 10))
	// A rollback: both published keys are revised in the next batch.
	mustApply(t, f, revokeCmd(t0+60, &fsmpb.Revoke{SubmissionId: subID(1)}))
	if got := f.Backlog(t0 + 60); got != 2 {
		t.Fatalf("backlog of two revisions: %d", got)
	}
	res := mustApply(t, f, fixedSeal(2, t0+120, 10)).GetSeal()
	if res.Keys != 0 || res.Revised != 2 || res.Padding != 8 {
		t.Fatalf("a batch of revisions: %+v, want 2 revised and 8 padding", res)
	}
	// Keys from the gateway: all of them go, above the size, and no backlog.
	var fromFR []*fsmpb.EFGSKey
	for n := range uint64(7) {
		fromFR = append(fromFR, efgsKey("FR", dayKey(500+n, today-2)))
	}
	mustApply(t, f, at(t0+180, importEFGS(today*86_400, "20241004-1", "", fromFR...))[0])
	mustApply(t, f, at(t0+180, publishV2(2, t0+180, nil, dayKey(3, today-2), dayKey(4, today-4), dayKey(5, today-5)))[0])
	if got := f.Backlog(t0 + 180); got != 3 {
		t.Fatalf("backlog with 7 keys from the gateway and 3 own: %d, want 3", got)
	}
	res = mustApply(t, f, fixedSeal(3, t0+240, 2)).GetSeal()
	if res.Keys != 9 || res.Padding != 0 || f.Backlog(t0+240) != 1 {
		t.Fatalf("a batch of 2 with 7 merged keys: %+v, %d own left; want 7 merged and 2 own, 1 waiting", res, f.Backlog(t0+240))
	}
	// Ten days without an upload: padding alone still looks like fresh keys.
	later := t0 + 10*86_400
	mustApply(t, f, fixedSeal(4, later, 5))
	res = mustApply(t, f, fixedSeal(5, later+60, 6)).GetSeal()
	if res.Keys != 0 || res.Padding != 6 {
		t.Fatalf("padding alone: %+v", res)
	}
	keys, _, _ := f.BatchKeys(5)
	newest := int32(0)
	for _, k := range keys {
		newest = max(newest, k.RollingStart)
		if k.RollingStart < (today+10-14)*day {
			t.Errorf("padding key of day %d, older than the 14 days before day %d", k.RollingStart/day, today+10)
		}
	}
	if newest != (today+9)*day {
		t.Fatalf("the newest padding key starts on day %d, want %d (the day before the seal)", newest/day, today+9)
	}
}
