package fsm_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Any log entry is applied, refused or stops the node, and never panics;
// two state machines given the same entries end with the same snapshot
// bytes (the state machine decides alike everywhere); the entry applied a
// second time (a retry) answers as the first did when it names a request
// id.
func FuzzApply(f *testing.F) {
	withID := publishV2(3, now, nil, keysFrom(20, 2)...)
	withID.Version, withID.RequestId = command.Version, bytes.Repeat([]byte{7}, fsm.RequestIDLen)
	for _, cmd := range []*fsmpb.Command{
		withID,
		publish(1, now, keysFrom(0, 3)...),
		publishV2(2, now, nil, keysFrom(10, 2)...),
		sealCmd(1, now+600, 5, 5),
		fixedSeal(1, now+600, 7),
		at(now, setPolicy(&fsmpb.Policy{PaddingKeysPerDay: 4200}))[0],
		putAuthority("https://ha.example.org", "aud", []string{"app"}, akey("k1", 0, 0)),
		setPolicy(&fsmpb.Policy{CodeTtlSeconds: 600}),
		{Version: 1, Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH, ImportBatch: &fsmpb.ImportBatch{Signed: []byte{1, 2, 3}}},
		codeUpload(4, "abcdefghijklmnop", now, keysFrom(30, 1)...),
		{Version: command.Version, Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, Publish: &fsmpb.Publish{SubmissionId: subID(5),
			VerificationCodeHashes: [][]byte{{1}, nil, hashOf("x")}}},
		at(now, setService(now-60, 3600))[0],
		at(now, signFiles(1, 0, true, &fsmpb.FileSignature{Digest: hashOf("file"), KeyId: "310", KeyVersion: "v1", Signature: []byte{1}, PublicKey: []byte{2}}))[0],
	} {
		f.Add(mustEncode(f, cmd))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var states [2][]byte
		for i := range states {
			m := fsm.New()
			m.SetHalt(func(error) {})
			m.Apply(logEntry(1, mustEncode(t, putAuthority("https://ha.example.org", "aud", []string{"app"}, akey("k1", 0, 0)))))
			m.Apply(logEntry(2, mustEncode(t, publish(9, now, keysFrom(100, 2)...))))
			first := m.Apply(&raft.Log{Index: 3, Term: 1, Type: raft.LogCommand, Data: data})
			again := m.Apply(&raft.Log{Index: 4, Term: 1, Type: raft.LogCommand, Data: data})
			var cmd fsmpb.Command
			if proto.Unmarshal(data, &cmd) == nil && cmd.GetVersion() >= fsm.SessionsSince && len(cmd.GetRequestId()) == fsm.RequestIDLen &&
				command.Check(&cmd) == nil && outcome(first) != outcome(again) {
				t.Fatalf("a command with a request id applied twice: %s, then %s", outcome(first), outcome(again))
			}
			states[i] = snapshotBytes(t, m)
		}
		if !bytes.Equal(states[0], states[1]) {
			t.Fatal("the same entries gave two states")
		}
	})
}

// Any bytes offered as a snapshot restore or fail cleanly; a snapshot that
// restores snapshots again to the same bytes.
func FuzzRestore(f *testing.F) {
	f.Add(snapshotBytes(f, richState(f)))
	f.Add(snapshotBytes(f, fsm.New()))
	f.Add([]byte{0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fsm.New()
		if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			return
		}
		again := snapshotBytes(t, m)
		n := fsm.New()
		if err := restoreBytes(n, again); err != nil {
			t.Fatalf("a restored state's snapshot does not restore: %v", err)
		}
		if !bytes.Equal(snapshotBytes(t, n), again) {
			t.Fatal("snapshot, restore, snapshot changed the bytes")
		}
	})
}
