package fsm_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func putProvider(id string) *fsmpb.Command {
	h := sha256.Sum256([]byte("token-" + id))
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_PROVIDER, TimeUnix: 1,
		PutProvider: &fsmpb.Provider{Id: id, Name: "Clinic " + id, TokenHash: h[:]}}
}

func codeHash(n byte) []byte {
	h := sha256.Sum256([]byte{n})
	return h[:]
}

func issueCode(t int64, provider string, lookup uint32, hash []byte) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE, TimeUnix: t,
		IssueCode: &fsmpb.Code{Lookup: lookup, Hash: hash, Provider: provider, TtlSeconds: 3600, ReportType: "confirmed"}}
}

func codePublish(n uint64, t int64, lookup uint32, hash []byte, keys ...*fsmpb.Key) *fsmpb.Command {
	cmd := publish(n, t, keys...)
	cmd.Publish.CodeLookup, cmd.Publish.CodeHash = lookup, hash
	return cmd
}

// A code admits exactly one upload; the upload records the provider and
// the code that authorized it.
func TestCodeAdmitsOneUpload(t *testing.T) {
	now := int64(1_800_000_000)
	f := fsm.New()
	mustApply(t, f, putProvider("p1"))
	mustApply(t, f, issueCode(now, "p1", 7, codeHash(1)))
	mustApply(t, f, codePublish(1, now+10, 7, codeHash(1), pkey(1), pkey(2)))
	before := freeze(t, f)
	if code := codeOf(applyCmd(t, f, codePublish(2, now+11, 7, codeHash(1), pkey(3))).Err); code != command.CodeCodeUsed {
		t.Fatalf("second upload with the code: %q", code)
	}
	assertUnchanged(t, f, before)
	sub, _ := f.Submission(0)
	if sub.Provider != "p1" || !bytes.Equal(sub.CodeHash, codeHash(1)) || sub.Issuer != "" {
		t.Fatalf("submission %+v", sub)
	}
	// A replay of the first upload (unknown outcome, retried) still answers.
	if r := mustApply(t, f, codePublish(1, now+12, 7, codeHash(1), pkey(1), pkey(2))).GetPublish(); !r.Replayed {
		t.Fatalf("replay: %+v", r)
	}
}

func TestCodeRefusals(t *testing.T) {
	now := int64(1_800_000_000)
	cases := []struct {
		name  string
		setup func(f *fsm.FSM)
		cmd   *fsmpb.Command
		code  command.Code
	}{
		{"unknown code", nil, codePublish(1, now, 99, codeHash(1), pkey(1)), command.CodeBadCode},
		{"expired", nil, codePublish(1, now+3600, 7, codeHash(1), pkey(1)), command.CodeCodeExpired},
		{"key already stored keeps the code", func(f *fsm.FSM) { mustApply(t, f, publish(9, now, pkey(1))) },
			codePublish(1, now, 7, codeHash(1), pkey(1)), command.CodeKeyExists},
		{"issue for unknown provider", nil, issueCode(now, "nobody", 8, codeHash(2)), command.CodeUnknownProvider},
		{"lookup in use", nil, issueCode(now, "p1", 7, codeHash(2)), command.CodeCodeCollision},
		{"lookup too large", nil, issueCode(now, "p1", 1<<20, codeHash(2)), command.CodeInvalidCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fsm.New()
			mustApply(t, f, putProvider("p1"))
			mustApply(t, f, issueCode(now, "p1", 7, codeHash(1)))
			if tc.setup != nil {
				tc.setup(f)
			}
			before := freeze(t, f)
			if code := codeOf(applyCmd(t, f, tc.cmd).Err); code != tc.code {
				t.Fatalf("code %q, want %q", code, tc.code)
			}
			assertUnchanged(t, f, before)
		})
	}
}

// Wrong attempts count on the code; at the limit it is locked, even for
// the right code.
func TestCodeLocksAfterFailures(t *testing.T) {
	now := int64(1_800_000_000)
	f := fsm.New()
	mustApply(t, f, putProvider("p1"))
	mustApply(t, f, issueCode(now, "p1", 7, codeHash(1)))
	for i := 1; i <= fsm.MaxCodeFailures; i++ {
		if code := codeOf(applyCmd(t, f, codePublish(uint64(i), now, 7, codeHash(2), pkey(1))).Err); code != command.CodeBadCode {
			t.Fatalf("attempt %d: %q", i, code)
		}
		if c, _ := f.Code(7); c.GetFailures() != uint32(i) {
			t.Fatalf("failures %d after %d attempts", c.GetFailures(), i)
		}
	}
	if code := codeOf(applyCmd(t, f, codePublish(9, now, 7, codeHash(1), pkey(1))).Err); code != command.CodeCodeLocked {
		t.Fatalf("right code after lock: %q", code)
	}
	// A code without keys only reports a wrong attempt; a right one is
	// neither counted nor used.
	mustApply(t, f, issueCode(now+1, "p1", 8, codeHash(8)))
	probe := codePublish(20, now+2, 8, codeHash(8))
	if code := codeOf(applyCmd(t, f, probe).Err); code != command.CodeInvalidCommand {
		t.Fatalf("keyless right code: %q", code)
	}
	if c, _ := f.Code(8); c.GetUsedUnix() != 0 || c.GetFailures() != 0 {
		t.Fatalf("keyless right code changed the code: %v", c)
	}
	if code := codeOf(applyCmd(t, f, codePublish(21, now+2, 8, codeHash(9))).Err); code != command.CodeBadCode {
		t.Fatalf("keyless wrong code: %q", code)
	}
	// A locked lookup may be reused for a new code.
	mustApply(t, f, issueCode(now+1, "p1", 7, codeHash(3)))
}

// Revoking a provider voids its unused codes; revocation by provider and
// by code withdraws what they authorized; expiry drops old codes; all of
// it survives a snapshot.
func TestProviderRevocationAndCodeLifecycle(t *testing.T) {
	now := int64(1_800_000_000)
	f := fsm.New()
	mustApply(t, f, putProvider("p1"))
	mustApply(t, f, putProvider("p2"))
	mustApply(t, f, issueCode(now, "p1", 1, codeHash(1)))
	mustApply(t, f, issueCode(now, "p1", 2, codeHash(2)))
	mustApply(t, f, issueCode(now, "p2", 3, codeHash(3)))
	mustApply(t, f, codePublish(1, now+1, 1, codeHash(1), pkey(1)))
	mustApply(t, f, codePublish(2, now+1, 3, codeHash(3), pkey(2), pkey(3)))

	g := fsm.New()
	if err := restoreBytes(g, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*fsm.FSM{f, g} {
		mustApply(t, x, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_PROVIDER, RevokeProvider: &fsmpb.RevokeProvider{Id: "p1"}})
		if _, ok := x.Code(2); ok {
			t.Fatal("unused code of a revoked provider survives")
		}
		if code := codeOf(applyCmd(t, x, issueCode(now, "p1", 4, codeHash(4))).Err); code != command.CodeUnknownProvider {
			t.Fatalf("revoked provider issued a code: %q", code)
		}
		r := mustApply(t, x, revokeCmd(now+2, &fsmpb.Revoke{Provider: "p1"})).GetRevoke()
		if r.Revoked != 1 {
			t.Fatalf("revoke by provider: %d", r.Revoked)
		}
		r = mustApply(t, x, revokeCmd(now+2, &fsmpb.Revoke{CodeHash: codeHash(3)})).GetRevoke()
		if r.Revoked != 2 {
			t.Fatalf("revoke by code: %d", r.Revoked)
		}
		exp := mustApply(t, x, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, TimeUnix: now + 7200,
			Expire: &fsmpb.Expire{CutoffUnix: now + 3601}}).GetExpire()
		if exp.Codes != 2 {
			t.Fatalf("expired %d codes, want the 2 used ones", exp.Codes)
		}
	}
	if !bytes.Equal(snapshotBytes(t, f), snapshotBytes(t, g)) {
		t.Fatal("restored state diverged")
	}
}
