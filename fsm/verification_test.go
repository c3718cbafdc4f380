package fsm_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

const vt0 = int64(1_800_000_000)

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func issueVCode(uuid, provider, short, long, testType string, at int64) *fsmpb.Command {
	return &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_ISSUE_VERIFICATION_CODE, TimeUnix: at,
		IssueVerificationCode: &fsmpb.VerificationCode{Uuid: uuid, Provider: provider, ShortHash: hashOf(short), LongHash: hashOf(long),
			TestType: testType, TestDay: 20_000, ShortTtlSeconds: 900, LongTtlSeconds: 86_400}}
}

func claimCode(code, tokenID string, at int64, accept ...string) *fsmpb.Command {
	return &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_CLAIM_CODE, TimeUnix: at,
		ClaimCode: &fsmpb.ClaimCode{Hashes: [][]byte{hashOf("old key " + code), hashOf(code)}, Accept: accept, TokenId: tokenID, TokenTtlSeconds: 86_400}}
}

func claimToken(id string, at int64) *fsmpb.Command {
	return &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_CLAIM_TOKEN, TimeUnix: at, ClaimToken: &fsmpb.ClaimToken{TokenId: id}}
}

func expireVCode(uuid, provider string, at int64) *fsmpb.Command {
	return &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE_VERIFICATION_CODE, TimeUnix: at,
		ExpireVerificationCode: &fsmpb.ExpireVerificationCode{Uuid: uuid, Provider: provider}}
}

func verificationFSM(t *testing.T) *fsm.FSM {
	t.Helper()
	f := fsm.New()
	mustApply(t, f, putProvider("lab"))
	mustApply(t, f, putProvider("clinic"))
	mustApply(t, f, issueVCode("u1", "lab", "12345678", "abcdefghijklmnop", "confirmed", vt0))
	mustApply(t, f, issueVCode("u2", "lab", "22345678", "bbcdefghijklmnop", "likely", vt0))
	return f
}

// Issuing: the reference's refusals, and no live code value twice.
func TestIssueVerificationCode(t *testing.T) {
	f := verificationFSM(t)
	bad := func(c *fsmpb.Command, change func(*fsmpb.VerificationCode)) *fsmpb.Command {
		change(c.IssueVerificationCode)
		return c
	}
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
		want command.Code
	}{
		{"unknown provider", issueVCode("u9", "nobody", "9", "9l", "confirmed", vt0), command.CodeUnknownProvider},
		{"uuid taken", issueVCode("u1", "clinic", "9", "9l", "confirmed", vt0), command.CodeUUIDExists},
		{"live short code", issueVCode("u9", "lab", "12345678", "9l", "confirmed", vt0+10), command.CodeCodeCollision},
		{"live long code", issueVCode("u9", "lab", "9", "abcdefghijklmnop", "confirmed", vt0+10), command.CodeCodeCollision},
		{"bad test type", issueVCode("u9", "lab", "9", "9l", "positive", vt0), command.CodeInvalidCommand},
		{"no uuid", issueVCode("", "lab", "9", "9l", "confirmed", vt0), command.CodeInvalidCommand},
		{"long shorter than short", bad(issueVCode("u9", "lab", "9", "9l", "confirmed", vt0), func(c *fsmpb.VerificationCode) { c.LongTtlSeconds = 60 }), command.CodeInvalidCommand},
		{"short hash", bad(issueVCode("u9", "lab", "9", "9l", "confirmed", vt0), func(c *fsmpb.VerificationCode) { c.ShortHash = c.ShortHash[:8] }), command.CodeInvalidCommand},
	} {
		before := freeze(t, f)
		if code := codeOf(applyCmd(t, f, tc.cmd).Err); code != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, code, tc.want)
		}
		assertUnchanged(t, f, before)
	}
	// The same command again (a proposal retried after leadership moved,
	// the first one applied) answers the code it issued and issues no
	// other; the uuid with other values is still taken (above).
	codes := len(f.VerificationCodesAll())
	again := mustApply(t, f, issueVCode("u1", "lab", "12345678", "abcdefghijklmnop", "confirmed", vt0+5)).GetVerificationCode()
	if again.GetUuid() != "u1" || again.GetIssuedUnix() != vt0 || len(f.VerificationCodesAll()) != codes {
		t.Fatalf("a retried issue answered %v (%d codes, were %d), want u1 as first issued", again, len(f.VerificationCodesAll()), codes)
	}
	// Once a code's long code has expired its values may be drawn again.
	r := mustApply(t, f, issueVCode("u3", "clinic", "12345678", "abcdefghijklmnop", "negative", vt0+86_400)).GetVerificationCode()
	if r.GetExpiresUnix() != vt0+86_400+900 || r.GetLongExpiresUnix() != vt0+2*86_400 || r.GetIssuedUnix() != vt0+86_400 {
		t.Fatalf("times of a new code: %v", r)
	}
}

// Claiming a code, in the reference's order: unknown, expired, used,
// type not accepted (the code stays unused); the token is single use.
func TestClaimCodeAndToken(t *testing.T) {
	f := verificationFSM(t)
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
		want command.Code
	}{
		{"unknown code", claimCode("00000000", "t0", vt0+1), command.CodeCodeInvalid},
		{"short code expired", claimCode("12345678", "t0", vt0+900), command.CodeCodeExpired},
		{"type not accepted", claimCode("22345678", "t0", vt0+1, "confirmed"), command.CodeUnsupportedTestType},
	} {
		before := freeze(t, f)
		if code := codeOf(applyCmd(t, f, tc.cmd).Err); code != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, code, tc.want)
		}
		assertUnchanged(t, f, before)
	}
	// u2 (likely), refused for an app accepting only confirmed, is unused.
	mustApply(t, f, claimCode("22345678", "t3", vt0+2, "confirmed", "likely"))
	// The long code outlives the short one.
	tok := mustApply(t, f, claimCode("abcdefghijklmnop", "t1", vt0+3600)).GetVerificationToken()
	if tok.GetCodeUuid() != "u1" || tok.GetTestType() != "confirmed" || tok.GetTestDay() != 20_000 || tok.GetExpiresUnix() != vt0+3600+86_400 {
		t.Fatalf("token %v", tok)
	}
	if code := codeOf(applyCmd(t, f, claimCode("12345678", "t2", vt0+1)).Err); code != command.CodeCodeExpired {
		t.Fatalf("the short code of a used pair, after its expiry: %q", code)
	}
	if code := codeOf(applyCmd(t, f, claimCode("abcdefghijklmnop", "t2", vt0+3601)).Err); code != command.CodeCodeInvalid {
		t.Fatalf("a used code: %q, want code_invalid", code)
	}
	if code := codeOf(applyCmd(t, f, claimCode("bbcdefghijklmnop", "t1", vt0+3)).Err); code != command.CodeInvalidCommand {
		t.Fatalf("a token id used twice: %q", code)
	}

	if r := mustApply(t, f, claimToken("t1", vt0+4000)).GetVerificationToken(); r.GetUsedUnix() != vt0+4000 {
		t.Fatalf("claimed token %v", r)
	}
	for name, cmd := range map[string]*fsmpb.Command{
		"used again": claimToken("t1", vt0+4001),
		"unknown":    claimToken("nope", vt0+4001),
		"expired":    claimToken("t3", vt0+2+86_400),
	} {
		if code := codeOf(applyCmd(t, f, cmd).Err); code != command.CodeTokenExpired {
			t.Errorf("token %s: %q, want token_expired", name, code)
		}
	}
}

// Expiring a code is scoped to its provider (CVE-2021-22565): another
// provider's code is not found, and nothing changes.
func TestExpireVerificationCodeScoped(t *testing.T) {
	f := verificationFSM(t)
	before := freeze(t, f)
	if code := codeOf(applyCmd(t, f, expireVCode("u1", "clinic", vt0+10)).Err); code != command.CodeCodeNotFound {
		t.Fatalf("another provider's code: %q, want code_not_found", code)
	}
	assertUnchanged(t, f, before)
	r := mustApply(t, f, expireVCode("u1", "lab", vt0+10)).GetVerificationCode()
	if r.GetExpiresUnix() != vt0+10 || r.GetLongExpiresUnix() != vt0+10 || r.GetExpiredByUnix() != vt0+10 {
		t.Fatalf("expired code %v", r)
	}
	if code := codeOf(applyCmd(t, f, claimCode("abcdefghijklmnop", "t1", vt0+11)).Err); code != command.CodeCodeExpired {
		t.Fatalf("an expired code: %q", code)
	}
}

// API keys: kinds, providers, and a revoked key stays known.
func TestAPIKeys(t *testing.T) {
	f := verificationFSM(t)
	put := func(name, kind, provider string) *fsmpb.Command {
		return &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_PUT_API_KEY, TimeUnix: vt0,
			PutApiKey: &fsmpb.ApiKey{Hash: hashOf(name), Name: name, Kind: kind, Provider: provider}}
	}
	mustApply(t, f, put("app", fsm.APIKeyDevice, ""))
	mustApply(t, f, put("lab-system", fsm.APIKeyAdmin, "lab"))
	stats := func(name, provider string, version uint32) *fsmpb.Command {
		cmd := put(name, fsm.APIKeyStats, provider)
		cmd.Version = version
		return cmd
	}
	mustApply(t, f, stats("ha-stats", "", command.StatsAPIKeys))
	mustApply(t, f, stats("lab-stats", "lab", command.StatsAPIKeys))
	for name, cmd := range map[string]*fsmpb.Command{
		"device key of a provider":          put("x", fsm.APIKeyDevice, "lab"),
		"admin key of nobody":               put("y", fsm.APIKeyAdmin, "nobody"),
		"other kind":                        put("z", "root", ""),
		"same key again":                    put("app", fsm.APIKeyDevice, ""),
		"stats key before its version":      stats("s5", "", command.StatsAPIKeys-1),
		"stats key of a provider of nobody": stats("s6", "nobody", command.StatsAPIKeys),
	} {
		if codeOf(applyCmd(t, f, cmd).Err) == "" {
			t.Errorf("%s: accepted", name)
		}
	}
	mustApply(t, f, &fsmpb.Command{Version: 3, Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_API_KEY, RevokeApiKey: &fsmpb.RevokeApiKey{Hash: hashOf("app")}})
	if k, ok := f.APIKey([32]byte(hashOf("app"))); !ok || !k.GetRevoked() {
		t.Fatalf("revoked key: %v %v", k, ok)
	}
}

// Retention drops ended codes and tokens; the verification records
// survive a snapshot byte for byte, and the restored state decides alike.
func TestVerificationExpiryAndSnapshot(t *testing.T) {
	f := verificationFSM(t)
	mustApply(t, f, claimCode("12345678", "t1", vt0+1))
	g := fsm.New()
	snap := snapshotBytes(t, f)
	if err := restoreBytes(g, snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Fatal("verification records do not round-trip")
	}
	if code := codeOf(applyCmd(t, g, claimCode("12345678", "t9", vt0+2)).Err); code != command.CodeCodeInvalid {
		t.Fatalf("a used code after restore: %q", code)
	}
	mustApply(t, g, claimToken("t1", vt0+3))
	r := mustApply(t, f, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, TimeUnix: vt0 + 30*86_400,
		Expire: &fsmpb.Expire{CutoffUnix: vt0 + 3*86_400}}).GetExpire()
	if r.GetCodes() != 2 {
		t.Fatalf("retention dropped %d codes, want 2", r.GetCodes())
	}
	if _, ok := f.VerificationToken("t1"); ok {
		t.Fatal("an ended token is kept")
	}
	mustApply(t, f, issueVCode("u1", "lab", "12345678", "abcdefghijklmnop", "confirmed", vt0+30*86_400))
}

// A user report (issued to the region, not a provider) is bound to the
// app's nonce, and one phone has one live report.
func TestUserReportCode(t *testing.T) {
	f := verificationFSM(t)
	report := func(uuid, short, long, phone string, at int64) *fsmpb.Command {
		c := issueVCode(uuid, "", short, long, "user-report", at)
		c.IssueVerificationCode.NonceHash, c.IssueVerificationCode.PhoneHash = hashOf("nonce "+uuid), hashOf(phone)
		return c
	}
	mustApply(t, f, report("r1", "31111111", "rrrrrrrrrrrrrrr1", "+15550001", vt0))
	if code := codeOf(applyCmd(t, f, report("r2", "32222222", "rrrrrrrrrrrrrrr2", "+15550001", vt0+60)).Err); code != command.CodeUserReportExists {
		t.Fatalf("a second report to one phone: %q", code)
	}
	if code := codeOf(applyCmd(t, f, issueVCode("x", "", "33333333", "rrrrrrrrrrrrrrr3", "confirmed", vt0)).Err); code != command.CodeUnknownProvider {
		t.Fatalf("a confirmed code of no provider: %q", code)
	}
	claim := claimCode("rrrrrrrrrrrrrrr1", "t1", vt0+70)
	claim.ClaimCode.NonceHash = hashOf("another nonce")
	if code := codeOf(applyCmd(t, f, claim).Err); code != command.CodeCodeInvalid {
		t.Fatalf("a user report with another nonce: %q", code)
	}
	claim.ClaimCode.NonceHash = hashOf("nonce r1")
	mustApply(t, f, claim)
	// A day on, the report has ended and the phone may report again.
	mustApply(t, f, report("r3", "34444444", "rrrrrrrrrrrrrrr4", "+15550001", vt0+86_400))
}

// codeUpload is a version 5 upload that names a verification code by its
// hashes under two code keys (the second made it), as the API sends it.
func codeUpload(n uint64, code string, at int64, keys ...*fsmpb.Key) *fsmpb.Command {
	cmd := publishV2(n, at, nil, keys...)
	cmd.Version = command.VerificationCodeUploads
	cmd.Publish.AuthorityKid, cmd.Publish.CertificateDigest = "", nil
	cmd.Publish.VerificationCodeHashes = [][]byte{hashOf("old key " + code), hashOf(code)}
	return cmd
}

// From version 5 an upload claims a verification code itself: once, while
// the code it names (short or long) lives, never a user report's code
// (bound to the app's nonce), and the code is then used for /api/verify
// too. The submission records the code's provider and the hash that found
// it.
func TestUploadClaimsVerificationCode(t *testing.T) {
	f := verificationFSM(t)
	report := issueVCode("r1", "", "31111111", "rrrrrrrrrrrrrrr1", "user-report", vt0)
	report.IssueVerificationCode.NonceHash, report.IssueVerificationCode.PhoneHash = hashOf("nonce"), hashOf("+15550001")
	mustApply(t, f, report)
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
		want command.Code
	}{
		{"unknown", codeUpload(1, "99999999", vt0+10, pkey(1)), command.CodeBadCode},
		{"short code past its 15 minutes", codeUpload(1, "12345678", vt0+900, pkey(1)), command.CodeCodeExpired},
		{"a user report's code", codeUpload(1, "31111111", vt0+10, pkey(1)), command.CodeBadCode},
		{"before version 5", func() *fsmpb.Command { c := codeUpload(1, "12345678", vt0+10, pkey(1)); c.Version = 4; return c }(), command.CodeInvalidCommand},
	} {
		before := freeze(t, f)
		if code := codeOf(applyCmd(t, f, tc.cmd).Err); code != tc.want {
			t.Fatalf("%s: %q, want %q", tc.name, code, tc.want)
		}
		assertUnchanged(t, f, before)
	}
	r := mustApply(t, f, codeUpload(1, "abcdefghijklmnop", vt0+900, pkey(1), pkey(2))).GetPublish()
	if r.GetInserted() != 2 {
		t.Fatalf("upload with the long code: %+v", r)
	}
	if c, _ := f.VerificationCode("u1"); c.GetClaimedUnix() != vt0+900 {
		t.Fatalf("the code was not claimed: %v", c)
	}
	if sub, _ := f.Submission(r.GetSubmission()); sub.Provider != "lab" || !bytes.Equal(sub.CodeHash, hashOf("abcdefghijklmnop")) || sub.Issuer != "" {
		t.Fatalf("submission %+v", sub)
	}
	before := freeze(t, f)
	if code := codeOf(applyCmd(t, f, codeUpload(2, "abcdefghijklmnop", vt0+901, pkey(3))).Err); code != command.CodeCodeUsed {
		t.Fatalf("a second upload with the code: %q", code)
	}
	if code := codeOf(applyCmd(t, f, claimCode("abcdefghijklmnop", "t1", vt0+1000)).Err); code != command.CodeCodeInvalid {
		t.Fatalf("/api/verify of a code an upload used: %q", code)
	}
	assertUnchanged(t, f, before)
	if code := codeOf(applyCmd(t, f, issueCode(vt0, "lab", 7, codeHash(1))).Err); code != "" {
		t.Fatalf("a code of version 1 refused: %q", code)
	}
	v5 := issueCode(vt0, "lab", 8, codeHash(2))
	v5.Version = command.VerificationCodeUploads
	if code := codeOf(applyCmd(t, f, v5).Err); code != command.CodeInvalidCommand {
		t.Fatalf("ISSUE_CODE at version 5: %q", code)
	}
	legacy := codePublish(3, vt0+20, 7, codeHash(1), pkey(4))
	legacy.Version, legacy.Publish.AuthorityKid = command.VerificationCodeUploads, "k1"
	if r := mustApply(t, f, legacy).GetPublish(); r.GetInserted() != 1 {
		t.Fatalf("a code of the previous release redeemed at version 5: %+v", r)
	}
}

// From version 5 the region counts the codes it sends by SMS: per number
// over 24 hours and region-wide over an hour, each a sliding window of
// command time; a version 4 entry is not refused (older builds applied it
// without quotas) but counts once sent.
func TestSMSQuotaWindows(t *testing.T) {
	f := verificationFSM(t)
	policy := setPolicy(&fsmpb.Policy{SmsPerHour: 2, SmsPerNumberPerDay: 2})
	policy.Version = command.RegionSMSQuota
	mustApply(t, f, policy)
	n := 0
	sms := func(to string, at int64, version uint32) command.Code {
		n++
		c := issueVCode(fmt.Sprintf("s%d", n), "lab", fmt.Sprintf("4%07d", n), fmt.Sprintf("smsssssssssss%03d", n), "confirmed", at)
		c.Version, c.IssueVerificationCode.SmsTo = version, hashOf(to)
		return codeOf(applyCmd(t, f, c).Err)
	}
	v := uint32(command.RegionSMSQuota)
	for _, tc := range []struct {
		name    string
		to      string
		at      int64
		version uint32
		want    command.Code
	}{
		{"first to a", "a", vt0, v, ""},
		{"second to a", "a", vt0 + 60, v, ""},
		{"third of the hour", "b", vt0 + 120, v, command.CodeSMSQuota},
		{"at version 4", "b", vt0 + 130, 4, ""},
		{"an hour after the second (the version 4 code was sent: it counts)", "b", vt0 + 3661, v, ""},
		{"third to a in a day", "a", vt0 + 7200, v, command.CodeNumberQuota},
		{"to a a day after the first", "a", vt0 + 86_401, v, ""},
	} {
		if got := sms(tc.to, tc.at, tc.version); got != tc.want {
			t.Fatalf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := f.SMSSentLastHour(vt0 + 86_401); got != 1 {
		t.Fatalf("%d sent in the last hour, want 1", got)
	}
}

// A code of a bulk run (version 6) keeps its run, line and sealed short
// code while it is unused; using it (at /api/verify or with an upload) or
// expiring it drops the sealed code, and its run and line stay.
func TestBulkCodeSealedUntilUsed(t *testing.T) {
	f := verificationFSM(t)
	bulk := func(uuid, short, long string, line int32) *fsmpb.Command {
		cmd := issueVCode(uuid, "lab", short, long, "confirmed", vt0)
		cmd.Version = command.BulkRuns
		cmd.IssueVerificationCode.BulkRun, cmd.IssueVerificationCode.BulkLine, cmd.IssueVerificationCode.SealedCode = "run-1", line, []byte("sealed "+short)
		return cmd
	}
	mustApply(t, f, bulk("b1", "41111111", "bbbbbbbbbbbbbbb1", 2))
	mustApply(t, f, bulk("b2", "42222222", "bbbbbbbbbbbbbbb2", 3))
	mustApply(t, f, bulk("b3", "43333333", "bbbbbbbbbbbbbbb3", 4))
	tooLong := bulk("b4", "44444444", "bbbbbbbbbbbbbbb4", 5)
	tooLong.IssueVerificationCode.SealedCode = make([]byte, 200)
	if codeOf(applyCmd(t, f, tooLong).Err) != command.CodeInvalidCommand {
		t.Fatal("a sealed code of 200 bytes was taken")
	}
	if c, _ := f.VerificationCode("b1"); c.GetBulkRun() != "run-1" || c.GetBulkLine() != 2 || string(c.GetSealedCode()) != "sealed 41111111" {
		t.Fatalf("the bulk code as stored: %v", c)
	}
	mustApply(t, f, claimCode("41111111", "t1", vt0+60))
	mustApply(t, f, codeUpload(77, "bbbbbbbbbbbbbbb2", vt0+60, pkey(77)))
	mustApply(t, f, expireVCode("b3", "lab", vt0+60))
	for _, uuid := range []string{"b1", "b2", "b3"} {
		if c, _ := f.VerificationCode(uuid); len(c.GetSealedCode()) != 0 || c.GetBulkRun() != "run-1" {
			t.Errorf("%s used or expired: sealed code %q, run %q", uuid, c.GetSealedCode(), c.GetBulkRun())
		}
	}
}
