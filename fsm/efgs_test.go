package fsm_test

import (
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func efgsCountry(c string) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST, PutTrust: &fsmpb.TrustedRegion{Region: c, Kind: fsm.TrustEFGSCountry, Merge: true}}
}

func efgsUploaded(seq uint32, tags ...string) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EFGS_UPLOADED, EfgsUploaded: &fsmpb.EFGSUpload{Seq: seq, Tags: tags}}
}

func importEFGS(day int64, tag, next string, keys ...*fsmpb.EFGSKey) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_EFGS, ImportEfgs: &fsmpb.ImportEFGS{DayUnix: day, Tag: tag, NextTag: next, Keys: keys}}
}

func efgsKey(origin string, k *fsmpb.Key) *fsmpb.EFGSKey {
	return &fsmpb.EFGSKey{Origin: origin, Key: k}
}

// at stamps commands with this build's version and a time.
func at(t int64, cmds ...*fsmpb.Command) []*fsmpb.Command {
	for _, c := range cmds {
		c.Version, c.TimeUnix = command.Version, t
	}
	return cmds
}

// Only the real keys this region's own apps sent go up to the gateway, a
// batch at a time in order, each recorded once: not padding, not keys
// merged from the gateway, not keys rolled back before the upload.
func TestEFGSUploadsOwnKeysOnce(t *testing.T) {
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	f := fsm.New()
	for _, c := range at(t0,
		putAuthority(haIssuer, "aud", []string{"app"}, akey("k1", 0, 0)),
		publishV2(1, t0, nil, dayKey(1, today-2), dayKey(2, today-2)),
		efgsCountry("FR"),
		importEFGS(today*86_400, "20241004-1", "", efgsKey("FR", dayKey(3, today-2))),
		sealCmd(1, t0, 0, 3),
	) {
		mustApply(t, f, c)
	}
	seq, keys, ok := f.EFGSNextUpload()
	got := map[fsm.TEK]bool{}
	for _, k := range keys {
		got[k.Data] = true
	}
	if !ok || seq != 1 || len(keys) != 2 || !got[fsm.TEK(tekBytes(1))] || !got[fsm.TEK(tekBytes(2))] {
		t.Fatalf("next upload: %d %v %v, want batch 1 with keys 1 and 2", seq, keys, ok)
	}
	if r := applyCmd(t, f, at(t0, efgsUploaded(2, "t2"))[0]); codeOf(r.Err) != command.CodeEFGSOrder {
		t.Fatalf("batch 2 before batch 1: %v", r.Err)
	}
	mustApply(t, f, at(t0, efgsUploaded(1, "tag-of-batch-1"))[0])
	if _, _, ok := f.EFGSNextUpload(); ok {
		t.Fatal("batch 1 offered again after its upload was recorded")
	}
	before := freeze(t, f)
	mustApply(t, f, at(t0, efgsUploaded(1, "another-tag"))[0])
	assertUnchanged(t, f, before)

	for _, c := range at(t0+60,
		publishV2(2, t0+60, nil, dayKey(4, today-2)),
		sealCmd(2, t0+60, 0, 0),
		revokeCmd(t0+60, &fsmpb.Revoke{SubmissionId: subID(2)}),
	) {
		mustApply(t, f, c)
	}
	if seq, keys, ok := f.EFGSNextUpload(); !ok || seq != 2 || len(keys) != 0 {
		t.Fatalf("a batch whose keys were rolled back: %d %v %v, want batch 2 without keys", seq, keys, ok)
	}
	if p := f.EFGSProgress(); p.GetUploadMark() != 1 || len(p.GetUploads()) != 1 || p.GetUploads()[0].GetTags()[0] != "tag-of-batch-1" {
		t.Fatalf("progress %v", p)
	}
}

// A download batch's keys of trusted countries are merged, one
// submission a country; others are counted as skipped; the batch again
// only learns the tag after it; bad batches are refused and change
// nothing.
func TestImportEFGSBatches(t *testing.T) {
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	dayStart := int64(today * 86_400)
	f := fsm.New()
	mustApply(t, f, at(t0, efgsCountry("DE"))[0])
	res := mustApply(t, f, at(t0, importEFGS(dayStart, "20241004-1", "",
		efgsKey("DE", dayKey(1, today-2)), efgsKey("DE", dayKey(2, today-3)), efgsKey("FR", dayKey(3, today-2))))[0])
	if got := res.GetImport(); got.GetMerged() != 2 || got.GetSkipped() != 1 || got.GetFile() != "20241004-1" {
		t.Fatalf("import: %v", got)
	}
	if sub, ok := f.Submission(0); !ok || sub.Issuer != "efgs:DE" || sub.KeyCount != 2 {
		t.Fatalf("submission %+v", sub)
	}
	if c := f.EFGSProgress().GetCursor(); c.GetTag() != "20241004-1" || c.GetNextTag() != "" || c.GetDayUnix() != dayStart {
		t.Fatalf("cursor %v", c)
	}
	again := mustApply(t, f, at(t0, importEFGS(dayStart, "20241004-1", "20241004-2", efgsKey("DE", dayKey(9, today-2))))[0])
	if !again.GetImport().GetDuplicate() || len(f.Keys(nil)) != 2 {
		t.Fatalf("the batch again: %v, %d keys", again.GetImport(), len(f.Keys(nil)))
	}
	if c := f.EFGSProgress().GetCursor(); c.GetNextTag() != "20241004-2" {
		t.Fatalf("cursor after the batch again: %v", c)
	}
	before := freeze(t, f)
	bad := dayKey(5, today-2)
	bad.RollingPeriod = 0
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
	}{
		{"no tag", importEFGS(dayStart, "", "", efgsKey("DE", dayKey(6, today-2)))},
		{"a day not at midnight", importEFGS(dayStart+1, "20241004-3", "")},
		{"a bad key", importEFGS(dayStart, "20241004-3", "", efgsKey("DE", bad))},
	} {
		if r := applyCmd(t, f, at(t0, tc.cmd)[0]); codeOf(r.Err) != command.CodeBadBatch {
			t.Fatalf("%s: %v", tc.name, r.Err)
		}
	}
	for _, c := range []*fsmpb.Command{
		{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST, PutTrust: &fsmpb.TrustedRegion{Region: "de", Kind: fsm.TrustEFGSCountry, Merge: true}},
		{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST, PutTrust: &fsmpb.TrustedRegion{Region: "NL", Kind: fsm.TrustEFGSCountry, Serve: true}},
	} {
		if r := applyCmd(t, f, at(t0, c)[0]); codeOf(r.Err) != command.CodeInvalidCommand {
			t.Fatalf("trust %v: %v", c.GetPutTrust(), r.Err)
		}
	}
	assertUnchanged(t, f, before)
}

// A key given twice in one import is taken once: it is published once
// and its submission ages out with it.
func TestMergedKeyGivenTwiceTakenOnce(t *testing.T) {
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	f := fsm.New()
	k := dayKey(1, today-2)
	for _, c := range at(t0, efgsCountry("FR"), importEFGS(today*86_400, "20241004-1", "", efgsKey("FR", k), efgsKey("FR", k))) {
		mustApply(t, f, c)
	}
	res := mustApply(t, f, at(t0, sealCmd(1, t0, 0, 0))[0]).GetSeal()
	if res.GetKeys() != 1 {
		t.Fatalf("the batch holds %d keys, want the one key once", res.GetKeys())
	}
	expire := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, Version: command.Version, TimeUnix: t0 + 20*86_400,
		Expire: &fsmpb.Expire{CutoffUnix: t0 + 19*86_400}}
	mustApply(t, f, expire)
	if subs := f.Submissions(); len(subs) != 0 {
		t.Fatalf("%d submissions outlive their keys", len(subs))
	}
}
