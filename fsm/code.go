package fsm

import (
	"crypto/subtle"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Limits of one-time codes.
const (
	// MaxCodeFailures wrong attempts on a code lock it.
	MaxCodeFailures = 5
	// CodeLookupBits is the size of the part of a code that finds it.
	CodeLookupBits = 20
)

var reportTypes = []string{"confirmed", "likely", "negative", "user-report"}

// applyPutProvider registers a health care provider or replaces its name
// and token hash (token rotation).
func applyPutProvider(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	p := proto.CloneOf(cmd.GetPutProvider())
	if !validName(p.GetId()) || len(p.GetTokenHash()) != 32 {
		return refuse(command.CodeInvalidCommand, "provider needs an id and a 32-byte token hash")
	}
	if old, ok := s.providers[p.GetId()]; ok {
		if old.GetRevoked() {
			return refuse(command.CodeInvalidCommand, "provider %q is revoked", p.GetId())
		}
		p.CreatedUnix = old.GetCreatedUnix()
	} else {
		p.CreatedUnix = cmd.GetTimeUnix()
	}
	p.Revoked = false
	s.providers[p.GetId()] = p
	return &fsmpb.Result{}
}

// applyRevokeProvider stops a provider: its token and admin API keys no
// longer work and its unused codes (of both kinds) are void. What it authorized stays until revoked by the
// revoke command, which can name the provider.
func applyRevokeProvider(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	p, ok := s.providers[cmd.GetRevokeProvider().GetId()]
	if !ok {
		return refuse(command.CodeUnknownProvider, "no provider %q", cmd.GetRevokeProvider().GetId())
	}
	p.Revoked = true
	for lookup, c := range s.codes {
		if c.GetProvider() == p.GetId() && c.GetUsedUnix() == 0 {
			delete(s.codes, lookup)
		}
	}
	for uuid, c := range s.vcodes {
		if c.GetProvider() == p.GetId() && c.GetClaimedUnix() == 0 {
			s.dropVerificationCode(uuid)
		}
	}
	return &fsmpb.Result{}
}

// applyIssueCode records a new one-time code of versions 1-4 (as a keyed
// hash). From version 5 codes are verification codes, and this command is
// refused; the codes it made are redeemed until they expire.
func applyIssueCode(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	c := proto.CloneOf(cmd.GetIssueCode())
	p, ok := s.providers[c.GetProvider()]
	switch {
	case cmd.GetVersion() >= command.VerificationCodeUploads:
		return refuse(command.CodeInvalidCommand, "one-time codes are verification codes from command version %d", command.VerificationCodeUploads)
	case !ok || p.GetRevoked():
		return refuse(command.CodeUnknownProvider, "no active provider %q", c.GetProvider())
	case c.GetLookup() >= 1<<CodeLookupBits || len(c.GetHash()) != 32 || c.GetTtlSeconds() <= 0:
		return refuse(command.CodeInvalidCommand, "code needs a 20-bit lookup, a 32-byte hash and a positive lifetime")
	case !slices.Contains(reportTypes, c.GetReportType()):
		return refuse(command.CodeInvalidCommand, "report type %q", c.GetReportType())
	}
	if old, taken := s.codes[c.GetLookup()]; taken && s.codeUsable(old, cmd.GetTimeUnix()) {
		return refuse(command.CodeCodeCollision, "lookup %d is in use; draw another code", c.GetLookup())
	}
	c.IssuedUnix, c.ExpiresUnix = cmd.GetTimeUnix(), cmd.GetTimeUnix()+c.GetTtlSeconds()
	c.UsedUnix, c.Failures, c.TtlSeconds = 0, 0, 0
	s.codes[c.GetLookup()] = c
	return &fsmpb.Result{Value: &fsmpb.Result_IssueCode{IssueCode: &fsmpb.CodeResult{IssuedUnix: c.GetIssuedUnix(), ExpiresUnix: c.GetExpiresUnix()}}}
}

func (s *state) codeUsable(c *fsmpb.Code, now int64) bool {
	return c.GetUsedUnix() == 0 && now < c.GetExpiresUnix() && c.GetFailures() < MaxCodeFailures
}

// redeemCode checks the code of a code upload; the caller consumes the
// code once the keys are stored. For a version 1 command a wrong code
// counts a failure on the code it names (that is the one state change a
// refused upload makes); from version 2 on failures count against the
// client, in the API, never against a code the client has not shown it
// holds.
func (s *state) redeemCode(p *fsmpb.Publish, now int64, countFailure bool) (*fsmpb.Code, *fsmpb.Result) {
	c, ok := s.codes[p.GetCodeLookup()]
	if !ok {
		r := refuse(command.CodeBadCode, "unknown code")
		return nil, r
	}
	var r *fsmpb.Result
	switch {
	case c.GetUsedUnix() != 0:
		r = refuse(command.CodeCodeUsed, "code already used")
	case now >= c.GetExpiresUnix():
		r = refuse(command.CodeCodeExpired, "code expired")
	case c.GetFailures() >= MaxCodeFailures:
		r = refuse(command.CodeCodeLocked, "code locked after %d wrong attempts", MaxCodeFailures)
	case subtle.ConstantTimeCompare(c.GetHash(), p.GetCodeHash()) != 1 && !countFailure:
		r = refuse(command.CodeBadCode, "wrong code")
	case subtle.ConstantTimeCompare(c.GetHash(), p.GetCodeHash()) != 1:
		c.Failures++
		r = refuse(command.CodeBadCode, "wrong code (%d of %d attempts)", c.GetFailures(), MaxCodeFailures)
	default:
		return c, nil
	}
	return nil, r
}

// codeUse is the one-time code a code upload redeems: its provider and the
// hash it was found by go on the submission (a roll-back can name the
// code), and claim uses it up once the keys are stored.
type codeUse struct {
	provider string
	hash     []byte
	claim    func(now int64)
}

// legacyUse is the use of a code of versions 1-4.
func legacyUse(c *fsmpb.Code) *codeUse {
	return &codeUse{provider: c.GetProvider(), hash: c.GetHash(), claim: func(now int64) { c.UsedUnix = now }}
}

// Code returns a copy of the code with the given lookup, so that the API
// can read what it grants (report type, onset) before the upload.
func (f *FSM) Code(lookup uint32) (*fsmpb.Code, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, ok := f.state.codes[lookup]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(c), true
}

// Provider returns a copy of a provider.
func (f *FSM) Provider(id string) (*fsmpb.Provider, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	p, ok := f.state.providers[id]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(p), true
}

// Providers returns copies of all providers, sorted by id.
func (f *FSM) Providers() []*fsmpb.Provider {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedClones(f.state.providers)
}

func validName(s string) bool {
	return idPattern(s)
}
