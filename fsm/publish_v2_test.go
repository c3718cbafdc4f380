package fsm_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

const haIssuer = "https://ha.example.org"

// publishV2 is a version 2 publish of submission n: every key of the
// upload, verified by the issuer's key k1, with the keys the upload's
// revision token covers.
func publishV2(n uint64, t int64, covered [][]byte, keys ...*fsmpb.Key) *fsmpb.Command {
	cmd := publish(n, t, keys...)
	cmd.Version = 2
	cmd.Publish.AuthorityKid = "k1"
	cmd.Publish.HasToken = covered != nil
	cmd.Publish.TokenKeys = covered
	return cmd
}

func keyData(keys ...*fsmpb.Key) [][]byte {
	out := [][]byte{}
	for _, k := range keys {
		out = append(out, k.GetKeyData())
	}
	return out
}

// v2State holds the authority and three likely keys of submission 1.
func v2State(t *testing.T) (*fsm.FSM, []*fsmpb.Key) {
	t.Helper()
	f := fsm.New()
	mustApply(t, f, putAuthority(haIssuer, "aud", []string{"app"}, akey("k1", 0, 0)))
	keys := []*fsmpb.Key{likelyKey(1, 100), likelyKey(2, 101), likelyKey(3, 102)}
	if r := mustApply(t, f, publishV2(1, now, nil, keys...)); r.GetPublish().GetInserted() != 3 {
		t.Fatalf("first upload: %v", r.Result)
	}
	return f, keys
}

// A version 2 publish sends every key of the upload; the state machine
// stores new keys, leaves resent ones as they are and revises the others,
// as the reference server does, and refuses stored keys the token does not
// cover.
func TestPublishV2Decides(t *testing.T) {
	fresh := likelyKey(9, 103)
	cases := []struct {
		name string
		cmd  func(keys []*fsmpb.Key) *fsmpb.Command
		want *fsmpb.PublishResult // nil: refused with code
		code command.Code
	}{
		{"resend with token", func(k []*fsmpb.Key) *fsmpb.Command { return publishV2(2, now+1, keyData(k...), k...) },
			&fsmpb.PublishResult{Unchanged: 3}, ""},
		{"resend and a new key", func(k []*fsmpb.Key) *fsmpb.Command {
			return publishV2(2, now+1, keyData(k...), append(k, fresh)...)
		}, &fsmpb.PublishResult{Inserted: 1, Unchanged: 3, Submission: 1}, ""},
		{"resend without token", func(k []*fsmpb.Key) *fsmpb.Command { return publishV2(2, now+1, nil, k...) },
			nil, command.CodeMissingToken},
		{"token of other keys", func(k []*fsmpb.Key) *fsmpb.Command { return publishV2(2, now+1, keyData(k[0]), k...) },
			nil, command.CodeInvalidToken},
		{"other interval", func(k []*fsmpb.Key) *fsmpb.Command {
			moved := proto.CloneOf(k[0])
			moved.RollingStart += 144
			return publishV2(2, now+1, keyData(k...), moved)
		}, nil, command.CodeInvalidToken},
		{"revision", func(k []*fsmpb.Key) *fsmpb.Command {
			return publishV2(2, now+1, keyData(k...), withReport(k[0], 1), withReport(k[1], 1), k[2])
		}, &fsmpb.PublishResult{Revised: 2, Unchanged: 1, Submission: 1}, ""},
		{"bad transition", func(k []*fsmpb.Key) *fsmpb.Command {
			return publishV2(2, now+1, keyData(k...), withReport(k[0], 3))
		}, nil, command.CodeBadTransition},
		{"negative stores nothing new", func(k []*fsmpb.Key) *fsmpb.Command {
			cmd := publishV2(2, now+1, keyData(k...), withReport(k[0], 5), fresh)
			cmd.Publish.ReviseOnly = true
			return cmd
		}, &fsmpb.PublishResult{Revised: 1, Submission: 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, keys := v2State(t)
			before := freeze(t, f)
			r := applyCmd(t, f, c.cmd(keys))
			if c.want == nil {
				if codeOf(r.Err) != c.code {
					t.Fatalf("got %v, %v; want refusal %q", r.Result, r.Err, c.code)
				}
				assertUnchanged(t, f, before)
				return
			}
			if r.Err != nil || !proto.Equal(r.GetPublish(), c.want) {
				t.Fatalf("got %v, %v; want %v", r.Result, r.Err, c.want)
			}
			if c.want.Inserted+c.want.Revised == 0 {
				assertUnchanged(t, f, before)
			}
		})
	}
}

// A revision applied before and sent again is a resend: nothing changes.
func TestPublishV2RevisionResent(t *testing.T) {
	f, keys := v2State(t)
	revised := []*fsmpb.Key{withReport(keys[0], 1), withReport(keys[1], 1), withReport(keys[2], 1)}
	mustApply(t, f, publishV2(2, now+1, keyData(keys...), revised...))
	before := freeze(t, f)
	r := mustApply(t, f, publishV2(3, now+2, keyData(keys...), revised...))
	if !proto.Equal(r.GetPublish(), &fsmpb.PublishResult{Unchanged: 3}) {
		t.Fatalf("revision again: %v", r.Result)
	}
	assertUnchanged(t, f, before)
	if r := applyCmd(t, f, publishV2(4, now+3, keyData(keys...), withReport(keys[0], 5))); codeOf(r.Err) != command.CodeKeyAlreadyRevised {
		t.Fatalf("second revision: %v", r.Err)
	}
}

// The state machine admits a certificate upload only while the key that
// verified it is the issuer's and valid at the command's time, whatever
// the node that checked the certificate believed.
func TestPublishV2AuthorityKey(t *testing.T) {
	window := akey("k1", 0, now-100)
	window.ValidThroughUnix = now + 100
	cases := []struct {
		name  string
		setup []*fsmpb.Command
		at    int64
		kid   string
		code  command.Code
	}{
		{"valid", []*fsmpb.Command{putAuthority(haIssuer, "aud", []string{"app"}, window)}, now, "k1", ""},
		{"not yet valid", []*fsmpb.Command{putAuthority(haIssuer, "aud", []string{"app"}, window)}, now - 101, "k1", command.CodeAuthorityKey},
		{"no longer valid", []*fsmpb.Command{putAuthority(haIssuer, "aud", []string{"app"}, window)}, now + 100, "k1", command.CodeAuthorityKey},
		{"other kid", []*fsmpb.Command{putAuthority(haIssuer, "aud", []string{"app"}, window)}, now, "k2", command.CodeAuthorityKey},
		{"key removed", []*fsmpb.Command{putAuthority(haIssuer, "aud", []string{"app"}, window, akey("k2", 1, 0)),
			removeAuthority(haIssuer, "k1")}, now, "k1", command.CodeAuthorityKey},
		{"authority removed", []*fsmpb.Command{putAuthority(haIssuer, "aud", []string{"app"}, window),
			removeAuthority(haIssuer, "")}, now, "k1", command.CodeAuthorityKey},
		{"no kid named", []*fsmpb.Command{putAuthority(haIssuer, "aud", []string{"app"}, window)}, now, "", command.CodeInvalidCommand},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := fsm.New()
			for _, cmd := range c.setup {
				mustApply(t, f, cmd)
			}
			before := freeze(t, f)
			cmd := publishV2(1, c.at, nil, pkey(1))
			cmd.Publish.AuthorityKid = c.kid
			r := applyCmd(t, f, cmd)
			if codeOf(r.Err) != c.code {
				t.Fatalf("got %v, %v; want %q", r.Result, r.Err, c.code)
			}
			if c.code != "" {
				assertUnchanged(t, f, before)
			}
		})
	}
}

// Commands of version 2 never go back in time: one stamped before a
// command applied earlier is applied at that command's time (a new leader
// whose clock is behind cannot revive an expired code).
func TestCommandTimeNeverGoesBack(t *testing.T) {
	f := fsm.New()
	mustApply(t, f, putProvider("p1"))
	mustApply(t, f, issueCode(now, "p1", 7, codeHash(1))) // valid for an hour
	later := putNode("n1", "a:1", "a:2")
	later.Version, later.TimeUnix = 2, now+7200
	mustApply(t, f, later)
	behind := codePublish(1, now+10, 7, codeHash(1), pkey(1))
	behind.Version = 2
	if r := applyCmd(t, f, behind); codeOf(r.Err) != command.CodeCodeExpired {
		t.Fatalf("code upload stamped before the region's time: %v, want %s", r.Err, command.CodeCodeExpired)
	}
	// Version 1 commands keep their stamp, as the builds that wrote them
	// applied them.
	behind.Version = 1
	if r := applyCmd(t, f, behind); r.Err != nil {
		t.Fatalf("version 1 code upload: %v", r.Err)
	}
	// The region's time survives a snapshot.
	g := fsm.New()
	if err := restoreBytes(g, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	mustApply(t, g, issueCode(now, "p1", 8, codeHash(2)))
	again := codePublish(2, now+10, 8, codeHash(2), pkey(2))
	again.Version = 2
	if r := applyCmd(t, g, again); codeOf(r.Err) != command.CodeCodeExpired {
		t.Fatalf("after restore: %v, want %s", r.Err, command.CodeCodeExpired)
	}
}

// Every command type this build knows has an applier: a command of each
// type, even with an empty body, is refused or applied but never stops the
// node, so a type cannot be half registered.
func TestEveryCommandTypeApplies(t *testing.T) {
	for v, name := range fsmpb.CommandType_name {
		typ := fsmpb.CommandType(v)
		if typ == fsmpb.CommandType_COMMAND_TYPE_UNSPECIFIED {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if _, ok := command.Since(typ); !ok {
				t.Fatalf("%s is not in the command vocabulary", name)
			}
			f := fsm.New()
			f.SetHalt(func(err error) { t.Fatalf("%s stopped the node: %v", name, err) })
			toResponse(t, f.Apply(logEntry(1, mustEncode(t, &fsmpb.Command{Version: command.Version, Type: typ, TimeUnix: now}))))
		})
	}
}
