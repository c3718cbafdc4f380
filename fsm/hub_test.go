package fsm_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func tp(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func hubCountry(code string) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_COUNTRY, PutHubCountry: &fsmpb.HubCountry{Country: code,
		AuthThumbprints: []string{tp("auth " + code)}, Signers: []*fsmpb.HubSigner{{Thumbprint: tp("sign " + code), Pem: "PEM of " + code, AnchorSignature: "sig"}}}}
}

func hubUpload(code, tag string, keys ...uint64) *fsmpb.Command {
	u := &fsmpb.HubUpload{Country: code, Tag: tag, BatchSignature: "cms", SignerThumbprint: tp("sign " + code)}
	for _, n := range keys {
		u.KeyData = append(u.KeyData, tekBytes(n))
		u.Keys = append(u.Keys, tekBytes(n)) // the encoded key, opaque here
	}
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_HUB_UPLOAD, HubUpload: u}
}

// The hub stores each new upload as a download batch of its day, numbered
// in order and chained across midnight; an upload tag used before is 409,
// an upload with a key the hub holds is 207 naming it and stores nothing;
// a stranger's or a wrongly signed upload is refused.
func TestHubUploads(t *testing.T) {
	const today = 20_000
	t0 := int64(today*86_400 + 3600)
	f := fsm.New()
	for _, c := range at(t0, hubCountry("DE"), hubCountry("FR")) {
		mustApply(t, f, c)
	}
	up := func(t1 int64, c *fsmpb.Command) *fsmpb.HubUploadResult {
		t.Helper()
		return mustApply(t, f, at(t1, c)[0]).GetHubUpload()
	}
	if r := up(t0, hubUpload("DE", "a", 1, 2)); r.GetStatus() != 201 || r.GetTag() != "20241004-1" {
		t.Fatalf("first upload: %v", r)
	}
	if r := up(t0, hubUpload("DE", "a", 3)); r.GetStatus() != 409 {
		t.Fatalf("tag again: %v", r)
	}
	before := freeze(t, f)
	if r := up(t0, hubUpload("FR", "b", 4, 2, 5)); r.GetStatus() != 207 || len(r.GetCreated()) != 2 || len(r.GetConflicting()) != 1 || r.GetConflicting()[0] != 1 {
		t.Fatalf("a replayed key: %v", r)
	}
	assertUnchanged(t, f, before)
	if r := up(t0+86_400, hubUpload("FR", "b", 4, 5)); r.GetStatus() != 201 || r.GetTag() != "20241005-1" {
		t.Fatalf("next day: %v", r)
	}
	b, next, ok := f.HubBatch(today*86_400, "")
	if !ok || b.GetTag() != "20241004-1" || next != "20241005-1" || b.GetCountry() != "DE" {
		t.Fatalf("the day's first batch: %v %q %v", b, next, ok)
	}
	if _, next, _ := f.HubBatch((today+1)*86_400, "20241005-1"); next != "" {
		t.Fatalf("the chain goes on after its last batch: %q", next)
	}
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
	}{
		{"not a country", hubUpload("NL", "c", 9)},
		{"signed by another country's certificate", func() *fsmpb.Command {
			c := hubUpload("DE", "c", 9)
			c.HubUpload.SignerThumbprint = tp("sign FR")
			return c
		}()},
		{"a certificate of two countries", func() *fsmpb.Command {
			c := hubCountry("NL")
			c.PutHubCountry.AuthThumbprints = []string{tp("auth DE")}
			return c
		}()},
	} {
		if r := applyCmd(t, f, at(t0, tc.cmd)[0]); codeOf(r.Err) != command.CodeInvalidCommand {
			t.Fatalf("%s: %v", tc.name, r.Err)
		}
	}
	if c, ok := f.HubCountryOf(tp("auth FR")); !ok || c != "FR" {
		t.Fatalf("FR's authentication certificate: %q %v", c, ok)
	}
}

func hubCallback(country, id, url string, remove bool) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_CALLBACK,
		PutHubCallback: &fsmpb.HubCallback{Country: country, Id: id, Url: url, Remove: remove}}
}

// A country's callbacks are added, replaced by id and removed; they stay
// when its certificates are replaced; an unknown one is not removed, and
// a URL that is not https is refused.
func TestHubCallbacks(t *testing.T) {
	const t0 = int64(20_000*86_400 + 3600)
	f := fsm.New()
	for _, c := range at(t0, hubCountry("DE"), hubCallback("DE", "a", "https://de.example/1", false),
		hubCallback("DE", "b", "https://de.example/2", false), hubCallback("DE", "a", "https://de.example/3", false), hubCountry("DE"),
		hubCallback("DE", "b", "", true)) {
		mustApply(t, f, c)
	}
	cbs := f.HubCountries()[0].GetCallbacks()
	if len(cbs) != 1 || cbs[0].GetId() != "a" || cbs[0].GetUrl() != "https://de.example/3" {
		t.Fatalf("callbacks %v", cbs)
	}
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
		want command.Code
	}{
		{"remove an unknown one", hubCallback("DE", "zz", "", true), command.CodeUnknownRegion},
		{"plain http", hubCallback("DE", "c", "http://de.example/", false), command.CodeInvalidCommand},
		{"not a country", hubCallback("NL", "c", "https://nl.example/", false), command.CodeInvalidCommand},
	} {
		if r := applyCmd(t, f, at(t0, tc.cmd)[0]); codeOf(r.Err) != tc.want {
			t.Fatalf("%s: %v", tc.name, r.Err)
		}
	}
}

// A country removed from the hub is no country of it any more: its
// certificates name nobody, its uploads are refused; removing it again
// is refused.
func TestHubCountryRemoved(t *testing.T) {
	const t0 = int64(20_000*86_400 + 3600)
	f := fsm.New()
	remove := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_COUNTRY, PutHubCountry: &fsmpb.HubCountry{Country: "DE", Remove: true}}
	for _, c := range at(t0, hubCountry("DE"), hubUpload("DE", "a", 1), remove) {
		mustApply(t, f, c)
	}
	if _, ok := f.HubCountryOf(tp("auth DE")); ok {
		t.Fatal("a removed country's certificate still names it")
	}
	if r := applyCmd(t, f, at(t0, hubUpload("DE", "b", 2))[0]); codeOf(r.Err) != command.CodeInvalidCommand {
		t.Fatalf("an upload of a removed country: %v", r.Err)
	}
	if r := applyCmd(t, f, at(t0, remove)[0]); codeOf(r.Err) != command.CodeUnknownRegion {
		t.Fatalf("removed twice: %v", r.Err)
	}
	if len(f.HubBatches()) != 1 {
		t.Fatal("the removed country's batch went with it")
	}
}

// A country stores at most MaxHubKeysPerCountryDay keys a UTC day: the
// upload past it is 429 and stores nothing; the next day it uploads again.
func TestHubKeysPerCountryDay(t *testing.T) {
	const t0 = int64(20_000*86_400 + 3600)
	f := fsm.New()
	mustApply(t, f, at(t0, hubCountry("DE"))[0])
	next := uint64(1)
	upload := func(t1 int64, n int) uint32 {
		keys := make([]uint64, n)
		for i := range keys {
			keys[i], next = next, next+1
		}
		return mustApply(t, f, at(t1, hubUpload("DE", "tag-"+itoa(int(next)), keys...))[0]).GetHubUpload().GetStatus()
	}
	for range fsm.MaxHubKeysPerCountryDay / fsm.MaxHubUploadKeys {
		if s := upload(t0, fsm.MaxHubUploadKeys); s != 201 {
			t.Fatalf("an upload within the day's bound: %d", s)
		}
	}
	before := freeze(t, f)
	if s := upload(t0, 1); s != 429 {
		t.Fatalf("past the day's bound: %d", s)
	}
	assertUnchanged(t, f, before)
	if s := upload(t0+86_400, 1); s != 201 {
		t.Fatalf("the next day: %d", s)
	}
}
