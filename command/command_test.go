package command_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// A command goes out with the newest version the region applies, never
// below the version in which this build writes it, and not at all while
// the region is older than that.
func TestStamp(t *testing.T) {
	seal := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL}
	v2publish := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, Publish: &fsmpb.Publish{AuthorityKid: "k1"}}
	v1publish := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, Publish: &fsmpb.Publish{Revisions: []*fsmpb.Key{{}}}}
	plain := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, Publish: &fsmpb.Publish{Keys: []*fsmpb.Key{{}}}}
	policy := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY}
	quota := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, SetPolicy: &fsmpb.Policy{SmsPerHour: 10}}
	unlock := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_LOGIN, Login: &fsmpb.Login{Email: "w@lab.example", Unlock: true}}
	bulkCode := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ISSUE_VERIFICATION_CODE, IssueVerificationCode: &fsmpb.VerificationCode{BulkRun: "r"}}
	invited := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_USER, PutUser: &fsmpb.User{InviteHash: []byte{1}}}
	accept := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ACCEPT_INVITE}
	statsKey := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_API_KEY, PutApiKey: &fsmpb.ApiKey{Kind: "stats"}}
	codeUpload := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, Publish: &fsmpb.Publish{VerificationCodeHashes: [][]byte{{1}}}}
	fixedSeal := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL, Seal: &fsmpb.Seal{FixedSize: true, TargetKeys: 30}}
	byTheDay := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, SetPolicy: &fsmpb.Policy{PaddingKeysPerDay: 4200}}
	cases := []struct {
		name    string
		cmd     *fsmpb.Command
		region  uint32
		want    uint32
		pending bool
	}{
		{"old region, unchanged command", seal, 1, 1, false},
		{"new region, unchanged command", seal, command.Version, command.Version, false},
		{"region ahead of this build", seal, command.Version + 1, command.Version, false},
		{"version 2 publish in an old region", v2publish, 1, 0, true},
		{"version 2 publish in a new region", v2publish, 2, 2, false},
		{"version 1 form in a new region", v1publish, 2, 1, false},
		{"publish of either form, old region", plain, 1, 1, false},
		{"publish of either form, new region", plain, 2, 2, false},
		{"new type in an old region", policy, 1, 0, true},
		{"new type in a new region", policy, 2, 2, false},
		{"SMS quotas in a version 4 region", quota, 4, 0, true},
		{"SMS quotas in a version 5 region", quota, 5, 5, false},
		{"verification code upload in a version 4 region", codeUpload, 4, 0, true},
		{"verification code upload in a version 5 region", codeUpload, 5, 5, false},
		{"an unlock in a version 4 region (it would count a failure)", unlock, 4, 0, true},
		{"a stats key in a version 5 region (it would refuse the kind)", statsKey, 5, 0, true},
		{"a stats key in a version 6 region", statsKey, 6, 6, false},
		{"a bulk run's code in a version 5 region", bulkCode, 5, 0, true},
		{"an invitation in a version 5 region", invited, 5, 0, true},
		{"accepting an invitation in a version 5 region", accept, 5, 0, true},
		{"accepting an invitation in a version 6 region", accept, 6, 6, false},
		{"a seal of a fixed size in a version 8 region (it would seal every key due)", fixedSeal, 8, 0, true},
		{"a seal of a fixed size in a version 9 region", fixedSeal, 9, 9, false},
		{"padding by the day in a version 8 region (it would drop it)", byTheDay, 8, 0, true},
		{"padding by the day in a version 9 region", byTheDay, 9, 9, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := proto.CloneOf(c.cmd)
			err := command.Stamp(cmd, c.region)
			var pending *command.ErrUpgradePending
			if errors.As(err, &pending) != c.pending {
				t.Fatalf("Stamp = %v, want pending %v", err, c.pending)
			}
			if !c.pending && (err != nil || cmd.GetVersion() != c.want) {
				t.Fatalf("Stamp = %v, version %d; want version %d", err, cmd.GetVersion(), c.want)
			}
			if c.pending && cmd.GetVersion() != 0 {
				t.Fatalf("a refused stamp set version %d", cmd.GetVersion())
			}
		})
	}
	if err := command.Stamp(&fsmpb.Command{Type: 99}, command.Version); err == nil {
		t.Fatal("Stamp accepted an unknown type")
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		cmd  *fsmpb.Command
		ok   bool
	}{
		{"known", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL, Version: 1}, true},
		{"newest", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, Version: command.Version}, true},
		{"no version", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL}, false},
		{"future version", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL, Version: command.Version + 1}, false},
		{"type newer than its version", &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, Version: 1}, false},
		{"unknown type", &fsmpb.Command{Type: 99, Version: 1}, false},
		{"unspecified type", &fsmpb.Command{Version: 1}, false},
	}
	for _, c := range cases {
		if err := command.Check(c.cmd); (err == nil) != c.ok {
			t.Errorf("%s: Check = %v, want ok %v", c.name, err, c.ok)
		}
	}
}
