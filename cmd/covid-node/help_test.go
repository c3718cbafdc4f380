package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// Every command answers --help with what it does: a command with
// subcommands lists them and exits 0, a command or subcommand with flags
// says what it does before its flags (flag.ErrHelp, which main exits 0 on).
func TestHelpEverywhere(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"members", "ha", "providers", "apikeys", "users", "policy", "certs", "trust", "federation", "service"} {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{name, "--help"}, &out, &errOut)
		if err != nil || !strings.Contains(out.String(), "usage: covid-node "+name+" <subcommand>") || !strings.Contains(out.String(), "|") {
			t.Errorf("%s --help: %v\n%s", name, err, out.String())
		}
	}
	for _, args := range [][]string{{"serve", "-h"}, {"members", "list", "-h"}, {"policy", "set", "--help"}, {"certs", "node", "-h"},
		{"backup", "-h"}, {"keygen", "-h"}, {"dev-upload", "-h"}, {"dev-flow", "-h"}, {"healthcheck", "-h"}, {"certs", "revoke", "-h"}, {"service", "end", "-h"}} {
		var out, errOut bytes.Buffer
		if err := run(ctx, args, &out, &errOut); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: %v, want the flags printed as asked (exit 0)", args, err)
		}
		if entry(args[0]) == "" {
			t.Errorf("%v: the usage table says nothing of %s", args, args[0])
		}
	}
	var desc bytes.Buffer
	fs := flag.NewFlagSet("members add", flag.ContinueOnError)
	fs.SetOutput(&desc)
	describe(fs, "members add")
	fs.String("id", "", "the node id")
	fs.Usage()
	if !strings.Contains(desc.String(), "usage: covid-node members add [flags]") || !strings.Contains(desc.String(), "inspect and change the region's members") ||
		!strings.Contains(desc.String(), "-id string") {
		t.Errorf("a subcommand's help:\n%s", desc.String())
	}
}

// A command without the flags it needs is refused before any request
// (the address here answers nothing), naming every missing flag.
func TestRequiredFlagsBeforeAnyRequest(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"providers", "add"}, "providers add: --id needed"},
		{[]string{"users", "add", "--name", "N"}, "users add: --email, --password-file needed"},
		{[]string{"members", "add", "--id", "n4"}, "members add: --http-addr, --raft-addr needed"},
		{[]string{"trust", "add", "--region", "B"}, "trust add: --key-id, --public-key-file needed"},
		{[]string{"apikeys", "revoke"}, "apikeys revoke: --name needed"},
		{[]string{"service", "end"}, "service end: --wind-down-from needed"},
	} {
		err := run(ctx, append(tc.args, "--addr", "http://127.0.0.1:1", "--token-file", "/nonexistent"), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
