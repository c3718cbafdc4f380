package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
)

// The leader seals the second-factor secrets the previous release kept in
// clear, changing nothing else of the account (its sessions, its sign-in
// counts), and a second pass writes nothing.
func TestSealTOTPSecrets(t *testing.T) {
	ctx := context.Background()
	region := fsmtest.New(func() time.Time { return time.Unix(1_800_000_000, 0) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := []byte("code key")
	if err := command.PutProvider(ctx, region, &fsmpb.Provider{Id: "lab", TokenHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*fsmpb.User{
		{Email: "clear@lab.example", Provider: "lab", Roles: []string{"issue"}, PasswordHash: "$argon2id$x", TotpSecret: []byte("JBSWY3DPEHPK3PXP")},
		{Email: "none@lab.example", Provider: "lab", Roles: []string{"issue"}, PasswordHash: "$argon2id$y"},
	} {
		if _, err := command.PutUser(ctx, region, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := command.Login(ctx, region, &fsmpb.Login{Email: "clear@lab.example", Client: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	before, _ := region.State.User("clear@lab.example")
	if err := sealTOTPSecrets(ctx, region, region.State, key, logger); err != nil {
		t.Fatal(err)
	}
	after, _ := region.State.User("clear@lab.example")
	secret, err := account.OpenTOTP([][]byte{key}, "clear@lab.example", after.GetTotpSecret())
	if !account.TOTPSealed(after.GetTotpSecret()) || err != nil || secret != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("sealed %q: opens to %q, %v", after.GetTotpSecret(), secret, err)
	}
	after.TotpSecret = before.GetTotpSecret()
	if !proto.Equal(before, after) {
		t.Fatalf("sealing changed more than the secret:\n%v\n%v", before, after)
	}
	if none, _ := region.State.User("none@lab.example"); len(none.GetTotpSecret()) != 0 {
		t.Fatal("an account without a second factor got one")
	}
	sealed, _ := region.State.User("clear@lab.example")
	if err := sealTOTPSecrets(ctx, region, region.State, key, logger); err != nil {
		t.Fatal(err)
	}
	if again, _ := region.State.User("clear@lab.example"); !proto.Equal(sealed, again) {
		t.Fatal("a second pass sealed again")
	}
}
