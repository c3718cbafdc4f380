package fsm

import (
	"cmp"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Kinds of verification API keys.
const (
	APIKeyDevice = "device"
	APIKeyAdmin  = "admin"
	// APIKeyStats reads the statistics (from command.StatsAPIKeys): the
	// region's with no provider, else one provider's.
	APIKeyStats = "stats"
)

// maxUUIDLen bounds a client-chosen code uuid.
const maxUUIDLen = 64

// maxSealedCode bounds a bulk code's sealed short code (a mark, a nonce,
// the code and its tag take about 50 bytes).
const maxSealedCode = 128

// applyPutAPIKey registers a device key (the region's, held by apps), an
// admin key (a provider's, for its issuing systems) or a stats key (the
// region's or a provider's figures, read only).
func applyPutAPIKey(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	k := proto.CloneOf(cmd.GetPutApiKey())
	stats := k.GetKind() == APIKeyStats && cmd.GetVersion() >= command.StatsAPIKeys
	switch p, ok := s.providers[k.GetProvider()]; {
	case len(k.GetHash()) != 32 || !validName(k.GetName()):
		return refuse(command.CodeInvalidCommand, "an API key needs a name and a 32-byte hash")
	case k.GetKind() == APIKeyDevice && k.GetProvider() != "":
		return refuse(command.CodeInvalidCommand, "a device key belongs to the region, not to provider %q", k.GetProvider())
	case k.GetKind() == APIKeyAdmin && (!ok || p.GetRevoked()):
		return refuse(command.CodeUnknownProvider, "no active provider %q for an admin key", k.GetProvider())
	case stats && k.GetProvider() != "" && (!ok || p.GetRevoked()):
		return refuse(command.CodeUnknownProvider, "no active provider %q for a stats key", k.GetProvider())
	case k.GetKind() != APIKeyDevice && k.GetKind() != APIKeyAdmin && !stats:
		return refuse(command.CodeInvalidCommand, "API key kind %q: want device, admin or stats", k.GetKind())
	case s.apiKeys[[32]byte(k.GetHash())] != nil:
		return refuse(command.CodeInvalidCommand, "this API key exists")
	case s.apiKeyNamed(k.GetName()):
		return refuse(command.CodeInvalidCommand, "an API key named %q exists", k.GetName())
	}
	k.CreatedUnix, k.Revoked = cmd.GetTimeUnix(), false
	s.apiKeys[[32]byte(k.GetHash())] = k
	return &fsmpb.Result{}
}

func (s *state) apiKeyNamed(name string) bool {
	for _, k := range s.apiKeys {
		if k.GetName() == name {
			return true
		}
	}
	return false
}

// applyRevokeAPIKey stops a key; its record stays, so that it cannot be
// registered again.
func applyRevokeAPIKey(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	h := cmd.GetRevokeApiKey().GetHash()
	if len(h) != 32 || s.apiKeys[[32]byte(h)] == nil {
		return refuse(command.CodeUnknownAPIKey, "no such API key")
	}
	k := proto.CloneOf(s.apiKeys[[32]byte(h)])
	k.Revoked = true
	s.apiKeys[[32]byte(h)] = k
	return &fsmpb.Result{}
}

// applyIssueVerificationCode records a provider's code pair under its uuid.
// A hash that a live code holds is a collision: the issuer draws again.
func applyIssueVerificationCode(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	c := proto.CloneOf(cmd.GetIssueVerificationCode())
	now := cmd.GetTimeUnix()
	userReport := c.GetTestType() == "user-report" && c.GetProvider() == ""
	switch p, ok := s.providers[c.GetProvider()]; {
	case !userReport && (!ok || p.GetRevoked()):
		return refuse(command.CodeUnknownProvider, "no active provider %q", c.GetProvider())
	case userReport && (len(c.GetNonceHash()) != 32 || len(c.GetPhoneHash()) != 32):
		return refuse(command.CodeInvalidCommand, "a user report needs a nonce hash and a phone hash")
	case userReport && s.livePhone(c.GetPhoneHash(), now):
		return refuse(command.CodeUserReportExists, "this phone has a live user report")
	case c.GetUuid() == "" || len(c.GetUuid()) > maxUUIDLen:
		return refuse(command.CodeInvalidCommand, "a code needs a uuid of at most %d bytes", maxUUIDLen)
	case sameIssue(s.vcodes[c.GetUuid()], c):
		// The same command again: a node retried a proposal whose answer
		// it lost (leadership changed mid-way), and the first one took.
		return &fsmpb.Result{Value: &fsmpb.Result_VerificationCode{VerificationCode: proto.CloneOf(s.vcodes[c.GetUuid()])}}
	case s.vcodes[c.GetUuid()] != nil:
		return refuse(command.CodeUUIDExists, "uuid %q is taken", c.GetUuid())
	case len(c.GetShortHash()) != 32 || len(c.GetLongHash()) != 32:
		return refuse(command.CodeInvalidCommand, "a code needs 32-byte hashes")
	case !slices.Contains(reportTypes, c.GetTestType()):
		return refuse(command.CodeInvalidCommand, "test type %q", c.GetTestType())
	case c.GetShortTtlSeconds() <= 0 || c.GetLongTtlSeconds() < c.GetShortTtlSeconds():
		return refuse(command.CodeInvalidCommand, "lifetimes %d and %d: want 0 < short <= long", c.GetShortTtlSeconds(), c.GetLongTtlSeconds())
	case s.liveHash(c.GetShortHash(), now) || s.liveHash(c.GetLongHash(), now):
		return refuse(command.CodeCodeCollision, "a live code has this value; draw another")
	case len(c.GetBulkRun()) > maxUUIDLen || len(c.GetSealedCode()) > maxSealedCode || c.GetBulkLine() < 0:
		return refuse(command.CodeInvalidCommand, "a bulk run's id of at most %d bytes, a sealed code of at most %d", maxUUIDLen, maxSealedCode)
	}
	if cmd.GetVersion() >= command.RegionSMSQuota {
		if n, quota := s.issuedBy(c.GetProvider(), now), ProviderQuota(s.effectivePolicy()); c.GetProvider() != "" && n >= quota {
			return refuse(command.CodeProviderQuota, "provider %q has issued %d codes in the last 24 hours, its quota", c.GetProvider(), n)
		}
		if len(c.GetSmsTo()) > 0 {
			if refused := s.checkSMSQuota(c.GetSmsTo(), now); refused != nil {
				return refused
			}
		}
	}
	c.IssuedUnix, c.ExpiresUnix, c.LongExpiresUnix = now, now+c.GetShortTtlSeconds(), now+c.GetLongTtlSeconds()
	c.ClaimedUnix, c.ExpiredByUnix = 0, 0
	s.vcodes[c.GetUuid()] = c
	s.vcodeHash[[32]byte(c.GetShortHash())] = c.GetUuid()
	s.vcodeHash[[32]byte(c.GetLongHash())] = c.GetUuid()
	return &fsmpb.Result{Value: &fsmpb.Result_VerificationCode{VerificationCode: proto.CloneOf(c)}}
}

// checkSMSQuota refuses a code sent by SMS past the policy's quotas: the
// codes sent in the last hour, region-wide, and those sent to the number
// in the last 24 hours. Codes live in the state well past a day
// (retention), so a scan of them counts exactly; issuing by SMS is rare
// next to the reads an index would slow down.
func (s *state) checkSMSQuota(to []byte, now int64) *fsmpb.Result {
	perHour, perNumber := SMSQuotas(s.effectivePolicy())
	hour, number := s.smsSent(to, now)
	switch {
	case hour >= perHour:
		return refuse(command.CodeSMSQuota, "the region has sent %d codes by SMS in the last hour, its quota", hour)
	case number >= perNumber:
		return refuse(command.CodeNumberQuota, "this number has been sent %d codes by SMS in the last 24 hours, its quota", number)
	}
	return nil
}

// smsSent counts the codes sent by SMS in the hour before now, and those
// sent to the number to (nil: none) in the 24 hours before now.
func (s *state) smsSent(to []byte, now int64) (hour, number uint32) {
	for _, c := range s.vcodes {
		switch at := c.GetIssuedUnix(); {
		case len(c.GetSmsTo()) == 0 || at <= now-86_400:
		case at > now-3600 && slices.Equal(c.GetSmsTo(), to):
			hour, number = hour+1, number+1
		case at > now-3600:
			hour++
		case slices.Equal(c.GetSmsTo(), to):
			number++
		}
	}
	return hour, number
}

// issuedBy counts the codes provider issued in the 24 hours before now.
func (s *state) issuedBy(provider string, now int64) uint32 {
	n := uint32(0)
	for _, c := range s.vcodes {
		if c.GetProvider() == provider && c.GetIssuedUnix() > now-86_400 {
			n++
		}
	}
	return n
}

// IssuedLastDay counts the codes provider issued in the 24 hours before
// now, for the provider to see against its quota.
func (f *FSM) IssuedLastDay(provider string, now int64) uint32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.issuedBy(provider, now)
}

// SMSSentLastHour counts the codes the region sent by SMS in the hour
// before now, for operators to see against the quota.
func (f *FSM) SMSSentLastHour(now int64) uint32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	hour, _ := f.state.smsSent(nil, now)
	return hour
}

// sameIssue tells whether a stored code was issued by the very command c
// (its code values are drawn at random, so a retry is the only way to
// meet them again).
func sameIssue(have, c *fsmpb.VerificationCode) bool {
	return have != nil && have.GetProvider() == c.GetProvider() && have.GetTestType() == c.GetTestType() &&
		slices.Equal(have.GetShortHash(), c.GetShortHash()) && slices.Equal(have.GetLongHash(), c.GetLongHash())
}

// livePhone tells whether a user report sent to this phone is still live.
// A scan of the codes: issuing a user report is rare next to the lookups
// an index would slow down.
func (s *state) livePhone(hash []byte, now int64) bool {
	for _, c := range s.vcodes {
		if len(c.GetPhoneHash()) > 0 && slices.Equal(c.GetPhoneHash(), hash) && now < c.GetLongExpiresUnix() {
			return true
		}
	}
	return false
}

// liveHash tells whether a code that has not expired holds hash.
func (s *state) liveHash(hash []byte, now int64) bool {
	c := s.vcodes[s.vcodeHash[[32]byte(hash)]]
	return c != nil && now < c.GetLongExpiresUnix()
}

// applyClaimCode uses up the code one of the hashes names and creates its
// token, in the order of the reference's checks: unknown, expired, used,
// type not accepted (the code stays unused).
func applyClaimCode(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	cl, now := cmd.GetClaimCode(), cmd.GetTimeUnix()
	c, hash := s.verificationCodeFor(cl.GetHashes())
	expires := c.GetExpiresUnix()
	if c != nil && slices.Equal(hash, c.GetLongHash()) {
		expires = c.GetLongExpiresUnix()
	}
	switch {
	case cl.GetTokenId() == "" || s.tokens[cl.GetTokenId()] != nil || cl.GetTokenTtlSeconds() <= 0:
		return refuse(command.CodeInvalidCommand, "a claim needs a new token id and a positive token lifetime")
	case c == nil:
		return refuse(command.CodeCodeInvalid, "verification code invalid")
	case now >= expires:
		return refuse(command.CodeCodeExpired, "verification code expired")
	case c.GetClaimedUnix() != 0:
		return refuse(command.CodeCodeInvalid, "verification code invalid")
	case len(cl.GetAccept()) > 0 && !slices.Contains(cl.GetAccept(), c.GetTestType()):
		return refuse(command.CodeUnsupportedTestType, "the app does not accept test type %q", c.GetTestType())
	case len(c.GetNonceHash()) > 0 && !slices.Equal(c.GetNonceHash(), cl.GetNonceHash()):
		return refuse(command.CodeCodeInvalid, "verification code invalid")
	}
	c = proto.CloneOf(c)
	c.ClaimedUnix, c.SealedCode = now, nil // a used code is not shown again
	s.vcodes[c.GetUuid()] = c
	t := &fsmpb.VerificationToken{Id: cl.GetTokenId(), CodeUuid: c.GetUuid(), TestType: c.GetTestType(),
		TestDay: c.GetTestDay(), SymptomDay: c.GetSymptomDay(), ExpiresUnix: now + cl.GetTokenTtlSeconds()}
	s.tokens[t.GetId()] = t
	return &fsmpb.Result{Value: &fsmpb.Result_VerificationToken{VerificationToken: proto.CloneOf(t)}}
}

// redeemVerificationCode checks the verification code a code upload names
// by its hashes (from version 5): it is known, live for the code it was
// found by (short or long), unclaimed, and not bound to an app's nonce (a
// user report's code goes through /api/verify with the nonce). The caller
// claims it once the keys are stored.
func (s *state) redeemVerificationCode(p *fsmpb.Publish, now int64) (*codeUse, *fsmpb.Result) {
	c, hash := s.verificationCodeFor(p.GetVerificationCodeHashes())
	switch {
	case c == nil:
		return nil, refuse(command.CodeBadCode, "unknown code")
	case now >= c.GetExpiresUnix() && !slices.Equal(hash, c.GetLongHash()) || now >= c.GetLongExpiresUnix():
		return nil, refuse(command.CodeCodeExpired, "code expired")
	case c.GetClaimedUnix() != 0:
		return nil, refuse(command.CodeCodeUsed, "code already used")
	case len(c.GetNonceHash()) > 0:
		return nil, refuse(command.CodeBadCode, "a user report's code is verified with the app's nonce (/api/verify)")
	}
	claim := func(now int64) {
		c = proto.CloneOf(c)
		c.ClaimedUnix, c.SealedCode = now, nil
		s.vcodes[c.GetUuid()] = c
	}
	return &codeUse{provider: c.GetProvider(), hash: hash, claim: claim}, nil
}

// verificationCodeFor finds the code one of the hashes names, and that hash.
func (s *state) verificationCodeFor(hashes [][]byte) (*fsmpb.VerificationCode, []byte) {
	for _, h := range hashes {
		if len(h) != 32 {
			continue
		}
		if c := s.vcodes[s.vcodeHash[[32]byte(h)]]; c != nil {
			return c, h
		}
	}
	return nil, nil
}

// applyClaimToken uses up a token; unknown, expired and used tokens answer
// alike.
func applyClaimToken(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	t := s.tokens[cmd.GetClaimToken().GetTokenId()]
	if t == nil || cmd.GetTimeUnix() >= t.GetExpiresUnix() || t.GetUsedUnix() != 0 {
		return refuse(command.CodeTokenExpired, "verification token expired")
	}
	t = proto.CloneOf(t)
	t.UsedUnix = cmd.GetTimeUnix()
	s.tokens[t.GetId()] = t
	return &fsmpb.Result{Value: &fsmpb.Result_VerificationToken{VerificationToken: proto.CloneOf(t)}}
}

// applyExpireVerificationCode expires an unused code now, only for the
// provider that issued it (CVE-2021-22565: another's code is not found).
// A used or expired code stays as it is.
func applyExpireVerificationCode(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	e, now := cmd.GetExpireVerificationCode(), cmd.GetTimeUnix()
	c := s.vcodes[e.GetUuid()]
	if c == nil || c.GetProvider() != e.GetProvider() {
		return refuse(command.CodeCodeNotFound, "no code %q of this provider", e.GetUuid())
	}
	if c.GetClaimedUnix() == 0 && now < c.GetLongExpiresUnix() {
		c = proto.CloneOf(c)
		c.ExpiresUnix, c.LongExpiresUnix, c.ExpiredByUnix = min(c.GetExpiresUnix(), now), now, now
		c.SealedCode = nil
		s.vcodes[c.GetUuid()] = c
	}
	return &fsmpb.Result{Value: &fsmpb.Result_VerificationCode{VerificationCode: proto.CloneOf(c)}}
}

// expireVerification drops codes and tokens that ended before cutoff, and
// reports how many codes went.
func (s *state) expireVerification(cutoff int64) uint32 {
	n := uint32(0)
	for uuid, c := range s.vcodes {
		if c.GetLongExpiresUnix() < cutoff {
			s.dropVerificationCode(uuid)
			n++
		}
	}
	for id, t := range s.tokens {
		if t.GetExpiresUnix() < cutoff {
			delete(s.tokens, id)
		}
	}
	return n
}

func (s *state) dropVerificationCode(uuid string) {
	c := s.vcodes[uuid]
	for _, h := range [][]byte{c.GetShortHash(), c.GetLongHash()} {
		if s.vcodeHash[[32]byte(h)] == uuid {
			delete(s.vcodeHash, [32]byte(h))
		}
	}
	delete(s.vcodes, uuid)
}

// APIKey returns a copy of the API key with the given hash.
func (f *FSM) APIKey(hash [32]byte) (*fsmpb.ApiKey, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	k, ok := f.state.apiKeys[hash]
	return proto.CloneOf(k), ok
}

// APIKeys returns copies of the API keys, by name then hash.
func (f *FSM) APIKeys() []*fsmpb.ApiKey {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedAPIKeys(f.state.apiKeys)
}

// VerificationCode returns a copy of the code with the given uuid.
func (f *FSM) VerificationCode(uuid string) (*fsmpb.VerificationCode, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, ok := f.state.vcodes[uuid]
	return proto.CloneOf(c), ok
}

// HasVerificationCode tells whether a code with one of the hashes is
// known, so that a guess at an unknown code costs no raft entry.
func (f *FSM) HasVerificationCode(hashes [][]byte) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, _ := f.state.verificationCodeFor(hashes)
	return c != nil
}

// VerificationCodeFor returns a copy of the code one of the hashes names,
// and whether it was found by its long code, so that an upload's code can
// be checked (and its grant read) before raft.
func (f *FSM) VerificationCodeFor(hashes [][]byte) (c *fsmpb.VerificationCode, long, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, hash := f.state.verificationCodeFor(hashes)
	if c == nil {
		return nil, false, false
	}
	return proto.CloneOf(c), slices.Equal(hash, c.GetLongHash()), true
}

// VerificationToken returns a copy of the token with the given id.
func (f *FSM) VerificationToken(id string) (*fsmpb.VerificationToken, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.state.tokens[id]
	return proto.CloneOf(t), ok
}

func sortedAPIKeys(m map[[32]byte]*fsmpb.ApiKey) []*fsmpb.ApiKey {
	out := make([]*fsmpb.ApiKey, 0, len(m))
	for _, k := range m {
		out = append(out, proto.CloneOf(k))
	}
	slices.SortFunc(out, func(a, b *fsmpb.ApiKey) int {
		return cmp.Or(cmp.Compare(a.GetName(), b.GetName()), slices.Compare(a.GetHash(), b.GetHash()))
	})
	return out
}
