package fsm_test

import (
	"bytes"
	"encoding/binary"
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

// everyCommand is a run of writes that covers every command type the
// vocabulary holds, each accepted where it stands (a LOGIN counts a failed
// sign-in), at command version v, each with a request id of its own. It
// fails the test when a type of command.Since has no write in it.
func everyCommand(t *testing.T, v uint32) []*fsmpb.Command {
	t.Helper()
	const today = 20_000
	t0 := int64(today*day*600 + 3600)
	a := regionA(t)
	keyA, derA := fedKey(t, "a1")
	body, _ := a.FederationBody(1)
	user := putUser("w@lab.example", "lab", "$argon2id$v=19$m=65536,t=1,p=2$salt$hash", "issue")
	cmds := []*fsmpb.Command{
		putNode("n1", "10.0.0.1:7000", "10.0.0.1:8080"),
		putAuthority(haIssuer, "aud", []string{"app"}, akey("k1", 0, 0)),
		setPolicy(&fsmpb.Policy{CodeTtlSeconds: 7200}),
		putProvider("lab"),
		issueCode(t0, "lab", 7, codeHash(7)),
		publishV2(1, t0, nil, dayKey(1, today-2), dayKey(2, today-2)),
		sealCmd(1, t0, 0, 0),
		revokeCmd(t0, &fsmpb.Revoke{SubmissionId: subID(1)}),
		{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_API_KEY, PutApiKey: &fsmpb.ApiKey{Hash: hashOf("lab-system"), Name: "lab-system", Kind: fsm.APIKeyAdmin, Provider: "lab"}},
		issueVCode("u1", "lab", "11111111", "long-one", "confirmed", t0),
		claimCode("11111111", "t1", t0),
		claimToken("t1", t0),
		issueVCode("u2", "lab", "22222222", "long-two", "confirmed", t0),
		expireVCode("u2", "lab", t0),
		issueVCode("u3", "lab", "33333333", "long-three", "confirmed", t0),
		user,
		login("w@lab.example", false, t0),
		{Type: fsmpb.CommandType_COMMAND_TYPE_AUDIT, Audit: &fsmpb.AuditEvent{Actor: "w@lab.example", Provider: "lab", Action: "issue code", Target: "u1"}},
		trust("A", derA, "a1"),
		importCmd(mustSign(t, keyA, body, []byte("export signature of batch 1"))),
		{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_TRUST, RemoveTrust: &fsmpb.RemoveTrust{Region: "A"}},
		{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_API_KEY, RevokeApiKey: &fsmpb.RevokeApiKey{Hash: hashOf("lab-system")}},
		{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_PROVIDER, RevokeProvider: &fsmpb.RevokeProvider{Id: "lab"}},
		removeAuthority(haIssuer, ""),
		removeNode("n1"),
		{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, Expire: &fsmpb.Expire{CutoffUnix: t0 + 60}},
	}
	if v >= command.VerificationCodeUploads {
		at := slices.IndexFunc(cmds, func(c *fsmpb.Command) bool { return c.GetIssueVerificationCode().GetUuid() == "u3" })
		cmds = slices.Insert(cmds, at+1, codeUpload(2, "long-three", t0, dayKey(3, today-2)))
		cmds = slices.Insert(cmds, 1, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_CERT,
			RevokeCert: &fsmpb.RevokedCert{CertSha256: hashOf("a leaked certificate"), NodeId: "n2", Reason: "leaked"}})
	}
	if v >= command.Invitations {
		at := slices.Index(cmds, user)
		invited := putUser("new@lab.example", "lab", "$argon2id$v=19$m=65536,t=1,p=2$salt$unknown", "issue")
		invited.PutUser.InviteHash, invited.PutUser.InviteExpiresUnix = hashOf("invitation"), t0+86_400
		cmds = slices.Insert(cmds, at+1, invited, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ACCEPT_INVITE,
			AcceptInvite: &fsmpb.AcceptInvite{Email: "new@lab.example", InviteHash: hashOf("invitation"), PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$salt$chosen"}})
	}
	if v >= command.GAENImport {
		at := slices.IndexFunc(cmds, func(c *fsmpb.Command) bool { return c.GetType() == fsmpb.CommandType_COMMAND_TYPE_REMOVE_TRUST })
		file, der := signedFile(t, t0-3600, t0, dayKey(4, today-2), dayKey(5, today-3))
		cmds = slices.Insert(cmds, at+1, gaenSource("G", der, "g1", "v1"), importExport("G", "g/1.zip", file),
			efgsCountry("DE"), importEFGS(today*86_400, "20241004-1", "", efgsKey("DE", dayKey(6, today-2))))
		seal := slices.IndexFunc(cmds, func(c *fsmpb.Command) bool { return c.GetType() == fsmpb.CommandType_COMMAND_TYPE_SEAL })
		cmds = slices.Insert(cmds, seal+1, efgsUploaded(1, "tag-of-batch-1"), hubCountry("DE"), hubUpload("DE", "upload-1", 7, 8),
			&fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_CALLBACK, PutHubCallback: &fsmpb.HubCallback{Country: "DE", Id: "cb", Url: "https://de.example/callback"}},
			setAppConfig(validAppConfig()))
	}
	if v >= command.EndOfService {
		cmds = slices.Insert(cmds, len(cmds)-1, setService(t0+2*86_400, 3600)) // winding down at the last EXPIRE
		key, signer := hsmKey(t, "hsm")
		seal := slices.IndexFunc(cmds, func(c *fsmpb.Command) bool { return c.GetType() == fsmpb.CommandType_COMMAND_TYPE_SEAL })
		cmds[seal].Seal.Signers = []*fsmpb.ExportSigner{signer}
		cmds = slices.Insert(cmds, seal+1, signFiles(1, 0, true, fileSig(t, key, signer, "batch 1")))
	}
	if v >= command.DayPadding { // a fixed size: the revisions of the rollback, padded
		at := slices.IndexFunc(cmds, func(c *fsmpb.Command) bool { return c.GetType() == fsmpb.CommandType_COMMAND_TYPE_REVOKE })
		fixed := sealCmd(2, t0, 10, 10)
		fixed.Seal.FixedSize = true
		cmds = slices.Insert(cmds, at+1, fixed, setPolicy(&fsmpb.Policy{PaddingKeysPerDay: 4200}))
	}
	seen := map[fsmpb.CommandType]bool{}
	for i, c := range cmds {
		c.Version, c.TimeUnix = v, t0+int64(i)
		if c.GetType() == fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE {
			c.Version = min(v, command.VerificationCodeUploads-1) // issued before the upgrade
		}
		c.RequestId = binary.BigEndian.AppendUint64(make([]byte, 8), uint64(i+1))
		seen[c.GetType()] = true
	}
	cmds[len(cmds)-1].TimeUnix = t0 + 3*86_400 // expiry after retention's cut
	for n := range fsmpb.CommandType_name {
		if typ := fsmpb.CommandType(n); typ != fsmpb.CommandType_COMMAND_TYPE_UNSPECIFIED && !seen[typ] {
			if since, ok := command.Since(typ); ok && since <= v {
				t.Fatalf("%v is in the vocabulary but not in everyCommand", typ)
			}
		}
	}
	return cmds
}

// short is the start of an outcome, for the table a test logs.
func short(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 90 {
		return s[:90] + "…"
	}
	return s
}

// outcome is a result as a test compares it.
func outcome(out any) string {
	r, ok := out.(*fsmpb.Result)
	if !ok {
		return fmt.Sprintf("%T", out)
	}
	return prototext.MarshalOptions{}.Format(r)
}

// Every command type applied twice under one request id (a retry after an
// unknown outcome) answers the first result and leaves the state's bytes
// as the first apply left them. At command version 3, before sessions,
// the log shows which types a retry hurt.
func TestEveryCommandTakesEffectOnce(t *testing.T) {
	var table []string
	for _, v := range []uint32{3, command.Version} {
		f := fsm.New()
		idx := uint64(0)
		apply := func(cmd *fsmpb.Command) any {
			idx++
			return f.Apply(logEntry(idx, mustEncode(t, cmd)))
		}
		for i, cmd := range everyCommand(t, v) {
			first := apply(cmd)
			if r := toResponse(t, first); r.Err != nil {
				t.Fatalf("v%d write %d %v refused: %v", v, i, cmd.GetType(), r.Err)
			}
			snap := snapshotBytes(t, f)
			again := apply(proto.CloneOf(cmd))
			same, sameState := outcome(again) == outcome(first), bytes.Equal(snapshotBytes(t, f), snap)
			table = append(table, fmt.Sprintf("v%d %-40v same answer %-5v same state %-5v %s", v, cmd.GetType(), same, sameState,
				short(outcome(again))))
			if v >= fsm.SessionsSince && (!same || !sameState) {
				t.Errorf("%v applied twice: answer %q then %q, same state %v", cmd.GetType(), outcome(first), outcome(again), sameState)
			}
		}
	}
	t.Log("a write applied twice under one request id:\n" + strings.Join(table, "\n"))
}

// The session table keeps a write's result for SessionTTL of command time:
// past it, a command with the same id is applied again as a new one.
func TestSessionsRetireByTime(t *testing.T) {
	f := fsm.New()
	cmd := putNode("n1", "a:1", "a:2")
	cmd.Version, cmd.TimeUnix, cmd.RequestId = command.Version, now, bytes.Repeat([]byte{1}, fsm.RequestIDLen)
	mustApply(t, f, cmd)
	mustApply(t, f, removeNode("n1"))
	later := proto.CloneOf(cmd)
	later.TimeUnix = now + fsm.SessionTTL - 1
	mustApply(t, f, later)
	if _, ok := f.Node("n1"); ok {
		t.Fatal("a write within the session's lifetime was applied again")
	}
	// Another write past the lifetime retires the entry.
	other := putNode("n2", "b:1", "b:2")
	other.Version, other.TimeUnix, other.RequestId = command.Version, now+fsm.SessionTTL+1, bytes.Repeat([]byte{2}, fsm.RequestIDLen)
	mustApply(t, f, other)
	later.TimeUnix = now + fsm.SessionTTL + 2
	mustApply(t, f, later)
	if _, ok := f.Node("n1"); !ok {
		t.Fatal("a write past the session's lifetime was not applied")
	}
}

// The log of every command type, each write sent twice and interleaved
// with entries of no command, gives the same state bytes applied entry by
// entry, in batches, and restored from a snapshot at every point of it.
func TestEveryCommandTypeIsDeterministic(t *testing.T) {
	var logs []*raft.Log
	for _, cmd := range everyCommand(t, command.Version) {
		data := mustEncode(t, cmd)
		logs = append(logs, logEntry(0, data), &raft.Log{Type: raft.LogNoop}, logEntry(0, data))
	}
	for i, l := range logs {
		l.Index, l.Term = uint64(i+1), 1
	}
	whole := fsm.New()
	var want []string
	for _, l := range logs {
		want = append(want, outcome(whole.Apply(l)))
	}
	wantSnap := snapshotBytes(t, whole)
	batched := fsm.New()
	var got []string
	for chunk := range slices.Chunk(logs, 4) {
		for _, o := range batched.ApplyBatch(chunk) {
			got = append(got, outcome(o))
		}
	}
	if !slices.Equal(got, want) || !bytes.Equal(snapshotBytes(t, batched), wantSnap) {
		t.Fatal("ApplyBatch gives other results or state than Apply")
	}
	for cut := range logs {
		src := fsm.New()
		applyAll(t, src, logs[:cut])
		restored := fsm.New()
		if err := restoreBytes(restored, snapshotBytes(t, src)); err != nil {
			t.Fatalf("restore at %d: %v", cut, err)
		}
		for i, l := range logs[cut:] {
			if o := outcome(restored.Apply(l)); o != want[cut+i] {
				t.Fatalf("restored at %d, entry %d: %s, want %s", cut, cut+i, o, want[cut+i])
			}
		}
		if !bytes.Equal(snapshotBytes(t, restored), wantSnap) {
			t.Fatalf("restored at entry %d: state differs from the whole log's", cut)
		}
	}
}
