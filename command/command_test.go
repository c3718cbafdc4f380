package command_test

import (
	"errors"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// A command goes out with the newest version the region applies, never
// below the version in which this build writes it, and not at all while
// the region is older than that.
func TestStamp(t *testing.T) {
	cases := []struct {
		name    string
		typ     fsmpb.CommandType
		region  uint32
		want    uint32
		pending bool
	}{
		{"old region, unchanged command", fsmpb.CommandType_COMMAND_TYPE_SEAL, 1, 1, false},
		{"new region, unchanged command", fsmpb.CommandType_COMMAND_TYPE_SEAL, command.Version, command.Version, false},
		{"region ahead of this build", fsmpb.CommandType_COMMAND_TYPE_SEAL, command.Version + 1, command.Version, false},
		{"publish in an old region", fsmpb.CommandType_COMMAND_TYPE_PUBLISH, 1, 0, true},
		{"publish in a new region", fsmpb.CommandType_COMMAND_TYPE_PUBLISH, 2, 2, false},
		{"new type in an old region", fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, 1, 0, true},
		{"new type in a new region", fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, 2, 2, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := &fsmpb.Command{Type: c.typ}
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
