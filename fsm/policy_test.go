package fsm_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func setPolicy(p *fsmpb.Policy) *fsmpb.Command {
	return &fsmpb.Command{Version: 2, Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, TimeUnix: now, SetPolicy: p}
}

// The region policy starts at the defaults; SET_POLICY replaces the fields
// it sets, keeps the others, refuses values out of bounds, and survives a
// snapshot.
func TestPolicy(t *testing.T) {
	f := fsm.New()
	defaults := &fsmpb.Policy{RetentionSeconds: fsm.DefaultRetentionSeconds, SealMinKeys: fsm.DefaultSealMinKeys,
		SealPaddingJitter: fsm.DefaultSealPaddingJitter, CodeTtlSeconds: fsm.DefaultCodeTTLSeconds}
	if p, set := f.Policy(); set || !proto.Equal(p, defaults) {
		t.Fatalf("new state: %v set=%v, want defaults", p, set)
	}
	steps := []struct {
		name string
		in   *fsmpb.Policy
		want *fsmpb.Policy // nil: refused
	}{
		{"code lifetime", &fsmpb.Policy{CodeTtlSeconds: 900},
			&fsmpb.Policy{RetentionSeconds: fsm.DefaultRetentionSeconds, SealMinKeys: 1000, SealPaddingJitter: 100, CodeTtlSeconds: 900}},
		{"no padding", &fsmpb.Policy{NoPadding: true},
			&fsmpb.Policy{RetentionSeconds: fsm.DefaultRetentionSeconds, SealPaddingJitter: 100, CodeTtlSeconds: 900, NoPadding: true}},
		{"padding again", &fsmpb.Policy{SealMinKeys: 50, SealPaddingJitter: 10},
			&fsmpb.Policy{RetentionSeconds: fsm.DefaultRetentionSeconds, SealMinKeys: 50, SealPaddingJitter: 10, CodeTtlSeconds: 900}},
		{"retention", &fsmpb.Policy{RetentionSeconds: 7 * 86400},
			&fsmpb.Policy{RetentionSeconds: 7 * 86400, SealMinKeys: 50, SealPaddingJitter: 10, CodeTtlSeconds: 900}},
		{"retention too long", &fsmpb.Policy{RetentionSeconds: 365 * 86400}, nil},
		{"negative retention", &fsmpb.Policy{RetentionSeconds: -1}, nil},
		{"code lifetime too short", &fsmpb.Policy{CodeTtlSeconds: 5}, nil},
		{"padding too large", &fsmpb.Policy{SealMinKeys: 1 << 30}, nil},
		{"no padding and a minimum", &fsmpb.Policy{NoPadding: true, SealMinKeys: 5}, nil},
	}
	for _, s := range steps {
		before := freeze(t, f)
		r := applyCmd(t, f, setPolicy(s.in))
		if s.want == nil {
			if codeOf(r.Err) != command.CodeInvalidCommand {
				t.Fatalf("%s: %v, want a refusal", s.name, r.Err)
			}
			assertUnchanged(t, f, before)
			continue
		}
		if got, set := f.Policy(); r.Err != nil || !set || !proto.Equal(got, s.want) || !proto.Equal(r.GetPolicy(), s.want) {
			t.Fatalf("%s: %v (%v), policy %v; want %v", s.name, r.Result, r.Err, got, s.want)
		}
	}
	g := fsm.New()
	if err := restoreBytes(g, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.Policy(); !proto.Equal(a, must(g.Policy())) {
		t.Fatalf("restored policy %v, want %v", must(g.Policy()), a)
	}
}

func must(p *fsmpb.Policy, _ bool) *fsmpb.Policy { return p }

// Padding by the day (version 9) replaces a padding minimum a batch and
// no padding, and either of them replaces it; a version 8 command cannot
// set it (older builds do not know the field), and the budget is bounded.
func TestPolicyPaddingByTheDay(t *testing.T) {
	f := fsm.New()
	day := func(v uint32, p *fsmpb.Policy) *fsmpb.Command {
		cmd := setPolicy(p)
		cmd.Version = v
		return cmd
	}
	steps := []struct {
		name string
		cmd  *fsmpb.Command
		want func(*fsmpb.Policy) bool // nil: refused
	}{
		{"by the day", day(command.DayPadding, &fsmpb.Policy{PaddingKeysPerDay: 4200}),
			func(p *fsmpb.Policy) bool {
				return p.GetPaddingKeysPerDay() == 4200 && p.GetSealMinKeys() == 0 && !p.GetNoPadding()
			}},
		{"a minimum a batch", day(command.DayPadding, &fsmpb.Policy{SealMinKeys: 50}),
			func(p *fsmpb.Policy) bool { return p.GetPaddingKeysPerDay() == 0 && p.GetSealMinKeys() == 50 }},
		{"by the day from version 8", day(command.DayPadding-1, &fsmpb.Policy{PaddingKeysPerDay: 4200}),
			func(p *fsmpb.Policy) bool { return p.GetPaddingKeysPerDay() == 0 && p.GetSealMinKeys() == 50 }},
		{"by the day again", day(command.DayPadding, &fsmpb.Policy{PaddingKeysPerDay: 8000}),
			func(p *fsmpb.Policy) bool { return p.GetPaddingKeysPerDay() == 8000 && p.GetSealMinKeys() == 0 }},
		{"no padding", day(command.DayPadding, &fsmpb.Policy{NoPadding: true}),
			func(p *fsmpb.Policy) bool { return p.GetPaddingKeysPerDay() == 0 && p.GetNoPadding() }},
		{"too much", day(command.DayPadding, &fsmpb.Policy{PaddingKeysPerDay: 2_000_000}), nil},
		{"both", day(command.DayPadding, &fsmpb.Policy{PaddingKeysPerDay: 100, SealMinKeys: 5}), nil},
	}
	for _, st := range steps {
		before := freeze(t, f)
		r := applyCmd(t, f, st.cmd)
		if st.want == nil {
			if r.Err == nil {
				t.Fatalf("%s: accepted", st.name)
			}
			assertUnchanged(t, f, before)
			continue
		}
		if p, _ := f.Policy(); r.Err != nil || !st.want(p) {
			t.Fatalf("%s: %v, policy %v", st.name, r.Err, p)
		}
	}
}
