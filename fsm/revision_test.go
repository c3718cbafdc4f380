package fsm_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// likelyKey is a day key uploaded as "likely" (export code 2).
func likelyKey(n uint64, d int32) *fsmpb.Key {
	k := dayKey(n, d)
	k.ReportType = 2
	return k
}

func withReport(k *fsmpb.Key, report int32) *fsmpb.Key {
	c := proto.CloneOf(k)
	c.ReportType = report
	return c
}

func revisionCmd(n uint64, t int64, newKeys []*fsmpb.Key, revisions ...*fsmpb.Key) *fsmpb.Command {
	cmd := publish(n, t, newKeys...)
	cmd.Publish.Revisions = revisions
	return cmd
}

// An uploader revises its likely keys to confirmed once; published keys
// reappear in the next batch's revised keys with the new report type.
func TestRevisionLikelyToConfirmed(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	f := fsm.New()
	k1, k2 := likelyKey(1, today-2), likelyKey(2, today)
	mustApply(t, f, publish(1, now-100, k1, k2))
	mustApply(t, f, sealCmd(1, now, 0, 0)) // publishes k1 only

	res := mustApply(t, f, revisionCmd(2, now+10, []*fsmpb.Key{dayKey(3, today-1)}, withReport(k1, 1), withReport(k2, 1))).GetPublish()
	if res.Inserted != 1 || res.Revised != 2 {
		t.Fatalf("revision result %+v", res)
	}
	seal := mustApply(t, f, sealCmd(2, now+2*day*600, 0, 0)).GetSeal()
	if seal.Revised != 1 || seal.Keys != 2 {
		t.Fatalf("seal %+v: want k1 revised, k2 and k3 published", seal)
	}
	// Batch 1 (a published file) still shows k1 as it was published.
	first, _, _ := f.BatchKeys(1)
	if len(first) != 1 || first[0].ReportType != 2 {
		t.Fatalf("batch 1 changed after the revision: %+v", first)
	}
	keys, revised, _ := f.BatchKeys(2)
	if revised[0].Data != fsm.TEK(k1.KeyData) || revised[0].ReportType != 1 {
		t.Fatalf("revised %+v", revised)
	}
	for _, k := range keys {
		if k.Data == fsm.TEK(k2.KeyData) && k.ReportType != 1 {
			t.Fatalf("k2 published with report type %d, want the revised 1", k.ReportType)
		}
	}
}

func TestRevisionRefusals(t *testing.T) {
	now := int64(1_800_000_000)
	likely, user, confirmed := likelyKey(1, 20_000), withReport(likelyKey(2, 20_000), 3), dayKey(3, 20_000)
	confirmed.ReportType = 1
	cases := []struct {
		name string
		cmd  *fsmpb.Command
		code command.Code
	}{
		{"confirmed to likely", revisionCmd(9, now, nil, withReport(confirmed, 2)), command.CodeBadTransition},
		{"likely to user-report", revisionCmd(9, now, nil, withReport(likely, 3)), command.CodeBadTransition},
		{"unknown key", revisionCmd(9, now, nil, withReport(likelyKey(7, 20_000), 1)), command.CodeUnknownKey},
		{"valid revision with a stored new key", revisionCmd(9, now, []*fsmpb.Key{confirmed}, withReport(likely, 1)), command.CodeKeyExists},
		{"same key new and revised", revisionCmd(9, now, []*fsmpb.Key{likely}, withReport(likely, 1)), command.CodeInvalidCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fsm.New()
			mustApply(t, f, publish(1, now, likely, user, confirmed))
			before := freeze(t, f)
			if code := codeOf(applyCmd(t, f, tc.cmd).Err); code != tc.code {
				t.Fatalf("code %q, want %q", code, tc.code)
			}
			assertUnchanged(t, f, before)
		})
	}
	t.Run("once per key", func(t *testing.T) {
		f := fsm.New()
		mustApply(t, f, publish(1, now, likely, user))
		mustApply(t, f, revisionCmd(2, now, nil, withReport(user, 2)))
		if code := codeOf(applyCmd(t, f, revisionCmd(3, now, nil, withReport(user, 1))).Err); code != command.CodeKeyAlreadyRevised {
			t.Fatalf("second revision: %q", code)
		}
	})
	t.Run("negative withdraws the key", func(t *testing.T) {
		f := fsm.New()
		mustApply(t, f, publish(1, now, likely))
		mustApply(t, f, revisionCmd(2, now, nil, withReport(likely, fsm.ReportTypeRevoked)))
		if k := f.Keys(nil)[0]; !k.Revoked || !k.Revised {
			t.Fatalf("key after negative revision: %+v", k)
		}
	})
}
