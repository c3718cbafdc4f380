package fsm_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

const now = 1_700_000_000

func TestApplyPublish(t *testing.T) {
	// Every case starts from a state holding keys 0..2 in submission 0.
	base := func(t *testing.T) *fsm.FSM {
		f := fsm.New()
		mustApply(t, f, publish(1, now-60, keysFrom(0, 3)...))
		return f
	}
	withBadKey := func(mut func(k *fsmpb.Key)) *fsmpb.Command {
		k := pkey(100)
		mut(k)
		return publish(2, now, pkey(101), k, pkey(102))
	}
	withSubID := func(id []byte) *fsmpb.Command {
		c := publish(2, now, pkey(100))
		c.Publish.SubmissionId = id
		return c
	}
	boundary := []*fsmpb.Key{
		{KeyData: tekBytes(200), RollingStart: 0, RollingPeriod: 1, TransmissionRisk: 0, ReportType: 0},
		{KeyData: tekBytes(201), RollingStart: 1<<31 - 1, RollingPeriod: fsm.MaxRollingPeriod, TransmissionRisk: fsm.MaxTransmissionRisk,
			ReportType: fsm.MaxReportType, HasDaysSinceOnset: true, DaysSinceOnset: fsm.MaxDaysSinceOnset},
		{KeyData: tekBytes(202), RollingStart: 2_800_000, RollingPeriod: 144, HasDaysSinceOnset: true, DaysSinceOnset: -fsm.MaxDaysSinceOnset},
		{KeyData: tekBytes(203), RollingStart: 2_800_000, RollingPeriod: 144, HasDaysSinceOnset: true, DaysSinceOnset: 0},
	}
	travelerNoDigest := publish(3, now, pkey(300))
	travelerNoDigest.Publish.CertificateDigest = nil
	travelerNoDigest.Publish.AppId = ""

	cases := []struct {
		name string
		cmd  *fsmpb.Command
		code command.Code // "" means accepted
	}{
		{"fourteen new keys", publish(2, now, keysFrom(100, 14)...), ""},
		{"one new key", publish(2, now, pkey(100)), ""},
		{"boundary values", publish(2, now, boundary...), ""},
		{"traveler without digest or app id", travelerNoDigest, ""},
		{"no publish body", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, TimeUnix: now}, command.CodeInvalidCommand},
		{"no submission id", withSubID(nil), command.CodeInvalidCommand},
		{"submission id 15 bytes", withSubID(make([]byte, 15)), command.CodeInvalidCommand},
		{"submission id 17 bytes", withSubID(make([]byte, 17)), command.CodeInvalidCommand},
		{"no keys", publish(2, now), command.CodeInvalidCommand},
		{"key data missing", withBadKey(func(k *fsmpb.Key) { k.KeyData = nil }), command.CodeInvalidCommand},
		{"key data 15 bytes", withBadKey(func(k *fsmpb.Key) { k.KeyData = k.KeyData[:15] }), command.CodeInvalidCommand},
		{"key data 17 bytes", withBadKey(func(k *fsmpb.Key) { k.KeyData = append(k.KeyData, 0) }), command.CodeInvalidCommand},
		{"rolling period 0", withBadKey(func(k *fsmpb.Key) { k.RollingPeriod = 0 }), command.CodeInvalidCommand},
		{"rolling period 145", withBadKey(func(k *fsmpb.Key) { k.RollingPeriod = 145 }), command.CodeInvalidCommand},
		{"transmission risk -1", withBadKey(func(k *fsmpb.Key) { k.TransmissionRisk = -1 }), command.CodeInvalidCommand},
		{"transmission risk 9", withBadKey(func(k *fsmpb.Key) { k.TransmissionRisk = 9 }), command.CodeInvalidCommand},
		{"report type -1", withBadKey(func(k *fsmpb.Key) { k.ReportType = -1 }), command.CodeInvalidCommand},
		{"report type 6", withBadKey(func(k *fsmpb.Key) { k.ReportType = 6 }), command.CodeInvalidCommand},
		{"days since onset -15", withBadKey(func(k *fsmpb.Key) { k.HasDaysSinceOnset, k.DaysSinceOnset = true, -15 }), command.CodeInvalidCommand},
		{"days since onset 15", withBadKey(func(k *fsmpb.Key) { k.HasDaysSinceOnset, k.DaysSinceOnset = true, 15 }), command.CodeInvalidCommand},
		{"negative rolling start", withBadKey(func(k *fsmpb.Key) { k.RollingStart = -1 }), command.CodeInvalidCommand},
		{"same key twice in one command", publish(2, now, pkey(100), pkey(101), pkey(100)), command.CodeInvalidCommand},
		{"one key already stored", publish(2, now, pkey(100), pkey(1), pkey(101)), command.CodeKeyExists},
		{"all keys already stored", publish(2, now, keysFrom(0, 3)...), command.CodeKeyExists},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := base(t)
			before := freeze(t, f)
			r := applyCmd(t, f, c.cmd)
			if c.code != "" {
				if got := codeOf(r.Err); got != c.code {
					t.Fatalf("Err = %v (code %q), want code %q", r.Err, got, c.code)
				}
				if r.GetValue() != nil {
					t.Errorf("refused command returned value %v", r.Result)
				}
				assertUnchanged(t, f, before)
				return
			}
			if r.Err != nil {
				t.Fatalf("Err = %v, want success", r.Err)
			}
			want := &fsmpb.PublishResult{Inserted: uint32(len(c.cmd.Publish.Keys)), Submission: 1}
			if !proto.Equal(r.GetPublish(), want) {
				t.Fatalf("result = %v, want %v", r.Result, want)
			}
			if got := f.NumKeys(); got != 3+int(want.Inserted) {
				t.Errorf("NumKeys = %d, want %d", got, 3+want.Inserted)
			}
			var wantKeys []fsm.Key
			for _, pk := range c.cmd.Publish.Keys {
				k, err := fsm.KeyFromProto(pk)
				if err != nil {
					t.Fatal(err)
				}
				k.Submission = 1
				wantKeys = append(wantKeys, k)
				if !f.HasKey(k.Data) {
					t.Errorf("HasKey(%x) = false", k.Data)
				}
			}
			slices.SortFunc(wantKeys, func(a, b fsm.Key) int { return bytes.Compare(a.Data[:], b.Data[:]) })
			gotKeys := f.Keys(func(k fsm.Key) bool { return k.Submission == 1 })
			if !slices.Equal(gotKeys, wantKeys) {
				t.Errorf("stored keys\n got %+v\nwant %+v", gotKeys, wantKeys)
			}
			for _, k := range wantKeys {
				if back := k.Proto(); !proto.Equal(back, findKey(c.cmd.Publish.Keys, k.Data)) {
					t.Errorf("key %x round trip: got %v", k.Data, back)
				}
			}
			p := c.cmd.Publish
			wantSub := fsm.Submission{
				Index: 1, ID: [16]byte(p.SubmissionId), TimeUnix: c.cmd.TimeUnix, AppID: p.AppId, Issuer: p.Issuer,
				CertificateDigest: p.CertificateDigest, Traveler: p.Traveler, KeyCount: uint32(len(p.Keys)),
			}
			gotSub, ok := f.Submission(1)
			if !ok {
				t.Fatal("Submission(1) missing")
			}
			if d := diffViews(view{Submissions: []fsm.Submission{gotSub}}, view{Submissions: []fsm.Submission{wantSub}}); d != "" {
				t.Errorf("submission: %s\n got %+v\nwant %+v", d, gotSub, wantSub)
			}
			if _, ok := f.Submission(2); ok {
				t.Error("Submission(2) exists, want only 0 and 1")
			}
			// The keys of submission 0 are untouched.
			if d := diffViews(view{Keys: before.v.Keys}, view{Keys: f.Keys(func(k fsm.Key) bool { return k.Submission == 0 })}); d != "" {
				t.Errorf("keys of submission 0: %s", d)
			}
		})
	}
}

func findKey(keys []*fsmpb.Key, data fsm.TEK) *fsmpb.Key {
	for _, k := range keys {
		if bytes.Equal(k.KeyData, data[:]) {
			return k
		}
	}
	return nil
}

func TestPublishAllOrNothing(t *testing.T) {
	f := fsm.New()
	mustApply(t, f, publish(1, now, keysFrom(0, 3)...))
	before := freeze(t, f)

	fresh := keysFrom(100, 13)
	clash := append(slices.Clone(fresh[:7]), pkey(2))
	clash = append(clash, fresh[7:]...)
	r := applyCmd(t, f, publish(2, now, clash...))
	if codeOf(r.Err) != command.CodeKeyExists {
		t.Fatalf("Err = %v, want %s", r.Err, command.CodeKeyExists)
	}
	for _, k := range fresh {
		if f.HasKey(fsm.TEK(k.KeyData)) {
			t.Errorf("key %x of the refused command is stored", k.KeyData[:4])
		}
	}
	assertUnchanged(t, f, before)

	// A refused submission is not remembered: the retry without the clashing
	// key is applied, not replayed.
	r = mustApply(t, f, publish(2, now+1, fresh...))
	if want := (&fsmpb.PublishResult{Inserted: 13, Submission: 1}); !proto.Equal(r.GetPublish(), want) {
		t.Fatalf("retry result = %v, want %v", r.Result, want)
	}
	if f.NumKeys() != 16 {
		t.Fatalf("NumKeys = %d, want 16", f.NumKeys())
	}
	// A new submission clashing with the retried one is refused as a whole.
	before = freeze(t, f)
	r = applyCmd(t, f, publish(3, now+2, pkey(500), fresh[12]))
	if codeOf(r.Err) != command.CodeKeyExists {
		t.Fatalf("Err = %v, want %s", r.Err, command.CodeKeyExists)
	}
	if f.HasKey(fsm.TEK(tekBytes(500))) {
		t.Error("key 500 stored by a refused command")
	}
	assertUnchanged(t, f, before)
}

func TestPublishReplay(t *testing.T) {
	f := fsm.New()
	first := mustApply(t, f, publish(7, now, keysFrom(0, 14)...))
	want := &fsmpb.PublishResult{Inserted: 14, Submission: 0}
	if !proto.Equal(first.GetPublish(), want) {
		t.Fatalf("first result = %v, want %v", first.Result, want)
	}
	wantReplay := proto.CloneOf(want)
	wantReplay.Replayed = true

	retries := []struct {
		name string
		cmd  *fsmpb.Command
	}{
		{"identical", publish(7, now, keysFrom(0, 14)...)},
		{"later stamp", publish(7, now+3600, keysFrom(0, 14)...)},
		{"other keys", publish(7, now, keysFrom(1000, 3)...)},
		{"invalid keys", publish(7, now, &fsmpb.Key{KeyData: []byte{1}})},
		{"no keys", publish(7, now)},
	}
	for _, rt := range retries {
		t.Run(rt.name, func(t *testing.T) {
			before := freeze(t, f)
			r := applyCmd(t, f, rt.cmd)
			if r.Err != nil || !proto.Equal(r.GetPublish(), wantReplay) {
				t.Fatalf("replay = %v, %v; want %v, nil", r.Result, r.Err, wantReplay)
			}
			assertUnchanged(t, f, before)
		})
	}
	// Still replayed after other submissions were added.
	if r := mustApply(t, f, publish(8, now, keysFrom(100, 2)...)); !proto.Equal(r.GetPublish(), &fsmpb.PublishResult{Inserted: 2, Submission: 1}) {
		t.Fatalf("second submission result = %v", r.Result)
	}
	if r := applyCmd(t, f, publish(7, now, keysFrom(0, 14)...)); r.Err != nil || !proto.Equal(r.GetPublish(), wantReplay) {
		t.Fatalf("late replay = %v, %v; want %v", r.Result, r.Err, wantReplay)
	}
	if sub, _ := f.Submission(0); sub.TimeUnix != now || sub.KeyCount != 14 {
		t.Errorf("submission 0 = %+v, want the first stamp and 14 keys", sub)
	}
	if f.NumKeys() != 16 {
		t.Errorf("NumKeys = %d, want 16", f.NumKeys())
	}
}

func TestApplyAuthority(t *testing.T) {
	const ha, hb = "https://ha.example.org", "https://a.example.org" // hb sorts first
	auth := func(issuer, aud string, apps []string, keys ...*fsmpb.AuthorityKey) *fsmpb.Authority {
		return &fsmpb.Authority{Issuer: issuer, Audience: aud, AppIds: apps, Keys: keys}
	}
	badKid := func(keys ...*fsmpb.AuthorityKey) *fsmpb.Command {
		return putAuthority(ha, "aud", []string{"app"}, keys...)
	}
	garbage := akey("kx", 0, 0)
	garbage.PublicKeyDer = []byte("not a key")

	f := fsm.New()
	steps := []struct {
		name  string
		cmd   *fsmpb.Command
		code  command.Code
		want  []*fsmpb.Authority // all authorities after the step
		apps  []string           // app ids AppKnown must report
		noApp []string           // app ids AppKnown must not report
	}{
		{
			name: "add", cmd: putAuthority(ha, "aud1", []string{"app.a"}, akey("k2", 1, 0), akey("k1", 0, 10)),
			want: []*fsmpb.Authority{auth(ha, "aud1", []string{"app.a"}, akey("k1", 0, 10), akey("k2", 1, 0))},
			apps: []string{"app.a"}, noApp: []string{"app.b", ""},
		},
		{
			name: "update replaces fields and merges kids", cmd: putAuthority(ha, "aud2", []string{"app.b", "app.c"}, akey("k3", 2, 0), akey("k0", 3, 0)),
			want: []*fsmpb.Authority{auth(ha, "aud2", []string{"app.b", "app.c"}, akey("k0", 3, 0), akey("k1", 0, 10), akey("k2", 1, 0), akey("k3", 2, 0))},
			apps: []string{"app.b", "app.c"}, noApp: []string{"app.a"},
		},
		{
			name: "update replaces a kid", cmd: putAuthority(ha, "aud2", []string{"app.b"}, akey("k1", 3, 99)),
			want: []*fsmpb.Authority{auth(ha, "aud2", []string{"app.b"}, akey("k0", 3, 0), akey("k1", 3, 99), akey("k2", 1, 0), akey("k3", 2, 0))},
		},
		{name: "no body", cmd: &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_AUTHORITY}, code: command.CodeInvalidCommand},
		{name: "no issuer", cmd: putAuthority("", "aud", []string{"app"}, akey("k9", 0, 0)), code: command.CodeInvalidCommand},
		{name: "no audience", cmd: putAuthority(ha, "", []string{"app"}, akey("k9", 0, 0)), code: command.CodeInvalidCommand},
		{name: "no app ids", cmd: putAuthority(ha, "aud", nil, akey("k9", 0, 0)), code: command.CodeInvalidCommand},
		{name: "no keys", cmd: putAuthority(ha, "aud", []string{"app"}), code: command.CodeInvalidCommand},
		{name: "empty kid", cmd: badKid(akey("k9", 0, 0), akey("", 1, 0)), code: command.CodeInvalidCommand},
		{name: "duplicate kid", cmd: badKid(akey("k9", 0, 0), akey("k9", 1, 0)), code: command.CodeInvalidCommand},
		{name: "bad public key", cmd: badKid(akey("k9", 0, 0), garbage), code: command.CodeInvalidCommand},
		{name: "remove one kid", cmd: removeAuthority(ha, "k2"),
			want: []*fsmpb.Authority{auth(ha, "aud2", []string{"app.b"}, akey("k0", 3, 0), akey("k1", 3, 99), akey("k3", 2, 0))}},
		{name: "remove unknown kid", cmd: removeAuthority(ha, "k2"), code: command.CodeUnknownAuthority},
		{name: "remove unknown issuer", cmd: removeAuthority("https://nobody", ""), code: command.CodeUnknownAuthority},
		{name: "remove with no body", cmd: &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_AUTHORITY}, code: command.CodeUnknownAuthority},
		{
			name: "second authority sorts by issuer", cmd: putAuthority(hb, "aud", []string{"app.z"}, akey("only", 0, 0)),
			want: []*fsmpb.Authority{
				auth(hb, "aud", []string{"app.z"}, akey("only", 0, 0)),
				auth(ha, "aud2", []string{"app.b"}, akey("k0", 3, 0), akey("k1", 3, 99), akey("k3", 2, 0)),
			},
			apps: []string{"app.z", "app.b"},
		},
		{name: "removing the last kid removes the authority", cmd: removeAuthority(hb, "only"),
			want:  []*fsmpb.Authority{auth(ha, "aud2", []string{"app.b"}, akey("k0", 3, 0), akey("k1", 3, 99), akey("k3", 2, 0))},
			noApp: []string{"app.z"}},
		{name: "remove whole authority", cmd: removeAuthority(ha, ""), want: nil, noApp: []string{"app.b"}},
		{name: "remove again", cmd: removeAuthority(ha, ""), code: command.CodeUnknownAuthority},
	}
	for _, s := range steps {
		before := freeze(t, f)
		r := applyCmd(t, f, s.cmd)
		if s.code != "" {
			if got := codeOf(r.Err); got != s.code {
				t.Fatalf("%s: Err = %v (code %q), want %q", s.name, r.Err, got, s.code)
			}
			assertUnchanged(t, f, before)
			continue
		}
		if r.Err != nil || r.GetValue() != nil {
			t.Fatalf("%s: response %v, %v; want empty", s.name, r.Result, r.Err)
		}
		got := f.Authorities()
		if len(got) != len(s.want) {
			t.Fatalf("%s: %d authorities, want %d: %v", s.name, len(got), len(s.want), got)
		}
		for i := range got {
			if !proto.Equal(got[i], s.want[i]) {
				t.Fatalf("%s: authority %d\n got %v\nwant %v", s.name, i, got[i], s.want[i])
			}
			one, ok := f.Authority(s.want[i].Issuer)
			if !ok || !proto.Equal(one, s.want[i]) {
				t.Fatalf("%s: Authority(%q) = %v, %v", s.name, s.want[i].Issuer, one, ok)
			}
		}
		for _, app := range s.apps {
			if !f.AppKnown(app) {
				t.Errorf("%s: AppKnown(%q) = false", s.name, app)
			}
		}
		for _, app := range s.noApp {
			if f.AppKnown(app) {
				t.Errorf("%s: AppKnown(%q) = true", s.name, app)
			}
		}
		if after := viewOf(f); len(after.Keys)+len(after.Submissions)+len(after.Nodes) != 0 {
			t.Fatalf("%s: authority command touched keys, submissions or nodes", s.name)
		}
	}
	if _, ok := f.Authority(ha); ok {
		t.Error("authority still present at the end")
	}
}

func TestAuthorityReadViewsAreCopies(t *testing.T) {
	const ha = "https://ha.example.org"
	f := fsm.New()
	mustApply(t, f, putAuthority(ha, "aud", []string{"app"}, akey("k1", 0, 0), akey("k2", 1, 0)))
	before := freeze(t, f)
	a, _ := f.Authority(ha)
	a.Audience = "changed"
	a.Keys[0].Kid = "changed"
	a.AppIds[0] = "changed"
	all := f.Authorities()
	all[0].Keys = nil
	assertUnchanged(t, f, before)

	// Removing a kid must not alter a copy handed out earlier.
	held, _ := f.Authority(ha)
	mustApply(t, f, removeAuthority(ha, "k1"))
	if len(held.Keys) != 2 || held.Keys[0].Kid != "k1" || held.Keys[1].Kid != "k2" {
		t.Errorf("copy changed by a later remove: %v", held)
	}
}

func TestApplyNode(t *testing.T) {
	f := fsm.New()
	node := func(id, r, h string) *fsmpb.Node { return &fsmpb.Node{Id: id, RaftAddr: r, HttpAddr: h} }
	steps := []struct {
		name string
		cmd  *fsmpb.Command
		code command.Code
		want []*fsmpb.Node
	}{
		{"add n2", putNode("n2", "10.0.0.2:7000", "10.0.0.2:8080"), "", []*fsmpb.Node{node("n2", "10.0.0.2:7000", "10.0.0.2:8080")}},
		{"add n1 sorts first", putNode("n1", "10.0.0.1:7000", "10.0.0.1:8080"), "",
			[]*fsmpb.Node{node("n1", "10.0.0.1:7000", "10.0.0.1:8080"), node("n2", "10.0.0.2:7000", "10.0.0.2:8080")}},
		{"update n1", putNode("n1", "10.0.1.1:7000", "10.0.1.1:8443"), "",
			[]*fsmpb.Node{node("n1", "10.0.1.1:7000", "10.0.1.1:8443"), node("n2", "10.0.0.2:7000", "10.0.0.2:8080")}},
		{"no id", putNode("", "a:1", "a:2"), command.CodeInvalidCommand, nil},
		{"no raft address", putNode("n3", "", "a:2"), command.CodeInvalidCommand, nil},
		{"no http address", putNode("n3", "a:1", ""), command.CodeInvalidCommand, nil},
		{"no body", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_NODE}, command.CodeInvalidCommand, nil},
		{"remove unknown", removeNode("n3"), command.CodeUnknownNode, nil},
		{"remove with no body", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_NODE}, command.CodeUnknownNode, nil},
		{"remove n1", removeNode("n1"), "", []*fsmpb.Node{node("n2", "10.0.0.2:7000", "10.0.0.2:8080")}},
		{"remove n1 again", removeNode("n1"), command.CodeUnknownNode, nil},
		{"remove n2", removeNode("n2"), "", nil},
	}
	for _, s := range steps {
		before := freeze(t, f)
		r := applyCmd(t, f, s.cmd)
		if s.code != "" {
			if got := codeOf(r.Err); got != s.code {
				t.Fatalf("%s: Err = %v (code %q), want %q", s.name, r.Err, got, s.code)
			}
			assertUnchanged(t, f, before)
			continue
		}
		if r.Err != nil || r.GetValue() != nil {
			t.Fatalf("%s: response %v, %v; want empty", s.name, r.Result, r.Err)
		}
		got := f.Nodes()
		if len(got) != len(s.want) {
			t.Fatalf("%s: %d nodes, want %d: %v", s.name, len(got), len(s.want), got)
		}
		for i := range got {
			if !proto.Equal(got[i], s.want[i]) {
				t.Fatalf("%s: node %d = %v, want %v", s.name, i, got[i], s.want[i])
			}
			if one, ok := f.Node(s.want[i].Id); !ok || !proto.Equal(one, s.want[i]) {
				t.Fatalf("%s: Node(%q) = %v, %v", s.name, s.want[i].Id, one, ok)
			}
		}
	}
	if _, ok := f.Node("n1"); ok {
		t.Error("Node(n1) present after removal")
	}
}

func TestApplyMalformed(t *testing.T) {
	marshal := func(cmd *fsmpb.Command) []byte {
		b, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := mustEncode(t, putNode("n9", "a:1", "a:2"))
	future := putNode("n9", "a:1", "a:2")
	future.Version = command.Version + 1
	unspecified := putNode("n9", "a:1", "a:2")
	unspecified.Type = fsmpb.CommandType_COMMAND_TYPE_UNSPECIFIED
	unknown := putNode("n9", "a:1", "a:2")
	unknown.Type = 99
	mismatch := publish(5, now, pkey(5))
	mismatch.Type = fsmpb.CommandType_COMMAND_TYPE_PUT_NODE
	policyV1 := &fsmpb.Command{Version: 1, Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, SetPolicy: &fsmpb.Policy{CodeTtlSeconds: 600}}

	cases := []struct {
		name string
		data []byte
		halt bool // the node must stop; otherwise a refusal with code
		code command.Code
	}{
		{"invalid wire type", []byte{0xff, 0xff, 0xff}, true, ""},
		{"truncated", valid[:len(valid)-1], true, ""},
		{"length past the end", []byte{0x6a, 0x7f, 0x0a}, true, ""},
		{"future version", marshal(future), true, ""},
		{"version 0", marshal(&fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_NODE, PutNode: future.PutNode}), true, ""},
		{"far future version", marshal(&fsmpb.Command{Version: 1 << 31, Type: fsmpb.CommandType_COMMAND_TYPE_PUT_NODE, PutNode: future.PutNode}), true, ""},
		{"type newer than its version", mustEncode(t, policyV1), true, ""},
		{"unspecified type", mustEncode(t, unspecified), true, ""},
		{"unknown type", mustEncode(t, unknown), true, ""},
		{"empty entry", nil, true, ""},
		{"body of another type", mustEncode(t, mismatch), false, command.CodeInvalidCommand},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := fsm.New()
			var halted []error
			f.SetHalt(func(err error) { halted = append(halted, err) })
			mustApply(t, f, publish(1, now, keysFrom(0, 3)...))
			before := freeze(t, f)
			for name, apply := range map[string]func() any{
				"Apply":      func() any { return f.Apply(logEntry(9, c.data)) },
				"ApplyBatch": func() any { return f.ApplyBatch([]*raft.Log{logEntry(9, c.data)})[0] },
			} {
				halted = nil
				r := toResponse(t, apply())
				if r.Err == nil || r.GetValue() != nil {
					t.Fatalf("%s = %v, %v; want a refusal", name, r.Result, r.Err)
				}
				if c.halt != (len(halted) == 1) {
					t.Fatalf("%s: halted %v, want halt %v", name, halted, c.halt)
				}
				if c.halt && !strings.Contains(halted[0].Error(), "entry 9") {
					t.Errorf("%s: halt reason %q does not name the entry", name, halted[0])
				}
				if c.code != "" && codeOf(r.Err) != c.code {
					t.Fatalf("%s: Err = %v, want code %q", name, r.Err, c.code)
				}
				assertUnchanged(t, f, before)
			}
		})
	}

	// Entries that are not commands are ignored even if their data would be
	// a valid command.
	for _, typ := range []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogConfiguration, raft.LogAddPeerDeprecated, raft.LogRemovePeerDeprecated} {
		t.Run("log type "+typ.String(), func(t *testing.T) {
			f := fsm.New()
			before := freeze(t, f)
			l := &raft.Log{Index: 3, Term: 1, Type: typ, Data: valid}
			if out := f.Apply(l); out != nil {
				t.Errorf("Apply = %#v, want nil", out)
			}
			if out := f.ApplyBatch([]*raft.Log{l, l}); len(out) != 2 || out[0] != nil || out[1] != nil {
				t.Errorf("ApplyBatch = %#v, want [nil nil]", out)
			}
			assertUnchanged(t, f, before)
		})
	}
}

// mixedLog is a log of every kind of entry: accepted, refused, replayed,
// undecodable and non-command.
func mixedLog(tb testing.TB, publishes int) []*raft.Log {
	var cmds [][]byte
	add := func(cmd *fsmpb.Command) { cmds = append(cmds, mustEncode(tb, cmd)) }
	add(putAuthority("https://ha.example.org", "aud", []string{"app"}, akey("k1", 0, 0)))
	add(putNode("n1", "a:1", "a:2"))
	for i := range publishes {
		n := uint64(i)
		add(publish(n, now+int64(i), keysFrom(n*20, 1+i%14)...))
		switch i % 7 {
		case 1:
			add(publish(n-1, now, keysFrom(n*20, 3)...)) // replay
		case 2:
			add(publish(n+100_000, now, pkey(n*20+30), pkey(n*20))) // key exists
		case 3:
			add(publish(n+200_000, now, &fsmpb.Key{KeyData: []byte{1, 2}})) // invalid
		case 4:
			add(putNode("n"+itoa(i%5), "r:"+itoa(i), "h:"+itoa(i)))
		case 5:
			add(putAuthority("https://ha.example.org", "aud"+itoa(i), []string{"app"}, akey("k"+itoa(i%4), i%4, int64(i))))
		case 6:
			add(removeNode("n" + itoa((i+1)%5)))
		}
	}
	add(removeAuthority("https://ha.example.org", "k1"))
	var out []*raft.Log
	for i, c := range cmds {
		switch i % 11 {
		case 5:
			out = append(out, &raft.Log{Term: 1, Type: raft.LogNoop})
		case 9:
			out = append(out, &raft.Log{Term: 1, Type: raft.LogCommand, Data: []byte{0xff}})
		}
		out = append(out, logEntry(0, c))
	}
	for i, l := range out {
		l.Index = uint64(i + 1)
	}
	return out
}

func describe(out any) string {
	r, ok := out.(*fsmpb.Result)
	if !ok {
		return fmt.Sprintf("%T %#v", out, out)
	}
	return prototext.MarshalOptions{}.Format(r)
}

func TestApplyBatchMatchesApply(t *testing.T) {
	logs := mixedLog(t, 120)

	one := fsm.New()
	one.SetHalt(func(error) {}) // the log holds undecodable entries
	var want []string
	for _, l := range logs {
		want = append(want, describe(one.Apply(l)))
	}
	wantSnap := snapshotBytes(t, one)
	// The log is meant to exercise every outcome.
	var accepted, refused, replayed, ignored int
	for _, d := range want {
		switch {
		case d == "<nil> <nil>":
			ignored++
		case strings.Contains(d, "replayed:true"):
			replayed++
		case strings.Contains(d, "refusal:"):
			refused++
		default:
			accepted++
		}
	}
	if accepted == 0 || refused == 0 || replayed == 0 || ignored == 0 {
		t.Fatalf("log does not cover all outcomes: accepted %d refused %d replayed %d ignored %d", accepted, refused, replayed, ignored)
	}

	for _, size := range []int{1, 2, 3, 7, 64, len(logs)} {
		t.Run("batch "+itoa(size), func(t *testing.T) {
			f := fsm.New()
			f.SetHalt(func(error) {})
			var got []string
			for chunk := range slices.Chunk(logs, size) {
				out := f.ApplyBatch(chunk)
				if len(out) != len(chunk) {
					t.Fatalf("ApplyBatch returned %d results for %d entries", len(out), len(chunk))
				}
				for _, o := range out {
					got = append(got, describe(o))
				}
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("entry %d: ApplyBatch %s, Apply %s", i, got[i], want[i])
				}
			}
			if !bytes.Equal(snapshotBytes(t, f), wantSnap) {
				t.Fatal("ApplyBatch state differs from Apply state")
			}
			if d := diffViews(viewOf(f), viewOf(one)); d != "" {
				t.Fatal(d)
			}
		})
	}
	if out := one.ApplyBatch(nil); len(out) != 0 {
		t.Errorf("ApplyBatch(nil) = %v", out)
	}
}
