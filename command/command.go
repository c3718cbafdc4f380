// Package command is the region's command vocabulary: every command a node
// proposes to raft, the version it goes out with, and the typed result it
// gets back. Every other package builds commands here and nowhere else, so
// that a local write and a write forwarded to the leader return the same
// result by construction, and a new command is registered in one place.
//
// The wire messages (fsmpb.Command, its bodies, fsmpb.Result) are defined
// in fsm/fsmpb/fsm.proto; the state machine (package fsm) applies them.
package command

import (
	"context"
	"fmt"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Version is the newest command version this build writes and applies.
//
// Version 2: publishes carry every key of an upload and the authority key
// that verified it, and the state machine decides new, resent and revised
// keys; command times never go backwards; SET_POLICY exists.
//
// Version 3: an imported batch needs signature_v2 (which covers its
// export.sig) and is placed against its origin's high-water mark, so that
// no expired batch is taken again; a trusted region may have a start
// sequence; a seal may say which real key each padding key copies; the
// verification service's API keys, codes and tokens, and the portal's
// accounts and audit log, exist.
//
// Version 4: a command's request id is honoured: the state machine keeps
// each write's result under its id for a while and answers the same write
// proposed again with that result, changing nothing (fsm/session.go).
//
// Version 5: one one-time-code system. A code upload names a verification
// code (issued through /api/issue, the portal or /v1/codes) by its keyed
// hashes, and the publish claims it; ISSUE_CODE is refused (its codes,
// issued before, are still redeemed until they expire). A submission
// records the hour it came, not the second. Refused sign-ins count per
// client. Second-factor secrets are sealed (no new form: the state keeps
// bytes, which builds of version 5 seal). The region counts the codes it
// sends by SMS, per hour and per number, against its policy. REVOKE_CERT
// exists.
//
// Version 6: read-only statistics API keys (kind "stats"), for the
// region or for one provider. A code of the portal's bulk issue names its
// run and line and, when a worker hands it out, keeps its short code
// sealed until it is used, so that the run's results are shown again. An
// account may be invited: ACCEPT_INVITE sets its password once. A health
// authority may take its keys from a JWKS URL.
//
// Version 7: a trusted origin may be any GAEN key server (kind
// "gaen-export"), whose signed export files IMPORT_EXPORT imports, or a
// country of the EU gateway (kind "efgs-country"); EFGS_UPLOADED records
// the region's uploads to the gateway, IMPORT_EFGS imports its download
// batches; a region may serve a stand-in gateway (PUT_HUB_COUNTRY,
// HUB_UPLOAD, PUT_HUB_CALLBACK); SET_APP_CONFIG keeps the apps'
// configuration.
//
// Version 8: the region's end of service (SET_SERVICE): from its
// wind-down time uploads, codes, their claims and imports are refused;
// EXPIRE records the end once the last own key aged out, and later deletes
// submissions, codes, tokens, API keys and workers' accounts; the app
// configuration carries the service's status. An export key may be kept
// in an HSM: the leader signs each file once and SIGN_FILES replicates
// the signatures.
//
// Version 9: padding by the day: a seal may be of a fixed size (real keys
// up to it, oldest first, the rest waiting; padding alone when none), and
// the policy names a day's padding budget.
const Version = 9

// The first versions of changes that later code tests for.
const (
	// VerificationCodeUploads: a code upload names a verification code.
	VerificationCodeUploads = 5
	// HourlySubmissions: a submission records its hour; a roll-back
	// "since" takes in all of its hour.
	HourlySubmissions = 5
	// SignInPerClient: refused sign-ins lock out the client that made
	// them; the account is locked only after many, and not to the right
	// password with the right second factor.
	SignInPerClient = 5
	// SealedTOTPSecrets: builds open second-factor secrets sealed under
	// the code key; once the region applies it, the leader seals those
	// kept in clear (cmd/covid-node's sealTOTPJob).
	SealedTOTPSecrets = 5
	// RegionSMSQuota: a code sent by SMS names its number (keyed), and the
	// region refuses past its hourly and per-number quotas (Policy); a
	// provider issues at most its daily quota of codes.
	RegionSMSQuota = 5
	// StatsAPIKeys: an API key may be of kind "stats" (the stats API).
	StatsAPIKeys = 6
	// BulkRuns: a verification code may name its bulk run and line and
	// keep its short code sealed (earlier versions would keep the sealed
	// code after the code is used).
	BulkRuns = 6
	// Invitations: an account may have an open invitation, which
	// ACCEPT_INVITE takes to set its password.
	Invitations = 6
	// JWKSAuthorities: a health authority may name a JWKS URL its keys
	// come from, and a grace for keys gone from it.
	JWKSAuthorities = 6
	// GAENImport: a trusted origin may be a GAEN source whose export
	// files IMPORT_EXPORT imports.
	GAENImport = 7
	// EFGS: a trusted origin may be a country of the EU gateway; the
	// region records its uploads to the gateway (EFGS_UPLOADED) and
	// imports its download batches (IMPORT_EFGS).
	EFGS = 7
	// AppConfigs: the region keeps the configuration its apps run with
	// (SET_APP_CONFIG), with its history.
	AppConfigs = 7
	// EndOfService: the region may wind down, end and delete its data
	// (SET_SERVICE, Service), and the app configuration tells apps so.
	EndOfService = 8
	// ReplicatedSignatures: an export key may be one whose signatures
	// differ each time (an HSM's); the leader signs each file once and
	// SIGN_FILES replicates the signature.
	ReplicatedSignatures = 8
	// DayPadding: a seal may be of a fixed size (Seal.fixed_size) and the
	// policy may name a day's padding budget (padding_keys_per_day).
	DayPadding = 9
)

// Applier commits a command through the region's leader and returns its
// result; a refusal by the state machine is returned as *Error together
// with the result that carries it. node.Node implements it. The command is
// the applier's from then on: it sets the command's version and time (not
// its payload), so every call passes a command of its own, as the
// functions of this package do.
type Applier interface {
	Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error)
}

// Since returns the command version that introduced a type, and false for
// a type this build does not know. It is the one list of command types:
// the state machine stops at a type missing here.
func Since(t fsmpb.CommandType) (uint32, bool) {
	switch t {
	case fsmpb.CommandType_COMMAND_TYPE_PUBLISH,
		fsmpb.CommandType_COMMAND_TYPE_PUT_AUTHORITY,
		fsmpb.CommandType_COMMAND_TYPE_REMOVE_AUTHORITY,
		fsmpb.CommandType_COMMAND_TYPE_PUT_NODE,
		fsmpb.CommandType_COMMAND_TYPE_REMOVE_NODE,
		fsmpb.CommandType_COMMAND_TYPE_SEAL,
		fsmpb.CommandType_COMMAND_TYPE_REVOKE,
		fsmpb.CommandType_COMMAND_TYPE_EXPIRE,
		fsmpb.CommandType_COMMAND_TYPE_PUT_PROVIDER,
		fsmpb.CommandType_COMMAND_TYPE_REVOKE_PROVIDER,
		fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE,
		fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST,
		fsmpb.CommandType_COMMAND_TYPE_REMOVE_TRUST,
		fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH:
		return 1, true
	case fsmpb.CommandType_COMMAND_TYPE_SET_POLICY:
		return 2, true
	case fsmpb.CommandType_COMMAND_TYPE_PUT_API_KEY,
		fsmpb.CommandType_COMMAND_TYPE_REVOKE_API_KEY,
		fsmpb.CommandType_COMMAND_TYPE_ISSUE_VERIFICATION_CODE,
		fsmpb.CommandType_COMMAND_TYPE_CLAIM_CODE,
		fsmpb.CommandType_COMMAND_TYPE_CLAIM_TOKEN,
		fsmpb.CommandType_COMMAND_TYPE_EXPIRE_VERIFICATION_CODE,
		fsmpb.CommandType_COMMAND_TYPE_PUT_USER,
		fsmpb.CommandType_COMMAND_TYPE_LOGIN,
		fsmpb.CommandType_COMMAND_TYPE_AUDIT:
		return 3, true
	case fsmpb.CommandType_COMMAND_TYPE_REVOKE_CERT:
		return 5, true
	case fsmpb.CommandType_COMMAND_TYPE_ACCEPT_INVITE:
		return 6, true
	case fsmpb.CommandType_COMMAND_TYPE_IMPORT_EXPORT:
		return GAENImport, true
	case fsmpb.CommandType_COMMAND_TYPE_EFGS_UPLOADED,
		fsmpb.CommandType_COMMAND_TYPE_IMPORT_EFGS,
		fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_COUNTRY,
		fsmpb.CommandType_COMMAND_TYPE_HUB_UPLOAD,
		fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_CALLBACK:
		return EFGS, true
	case fsmpb.CommandType_COMMAND_TYPE_SET_APP_CONFIG:
		return AppConfigs, true
	case fsmpb.CommandType_COMMAND_TYPE_SET_SERVICE:
		return EndOfService, true
	case fsmpb.CommandType_COMMAND_TYPE_SIGN_FILES:
		return ReplicatedSignatures, true
	}
	return 0, false
}

// versions is the range of versions in which this build can write a
// command as built: from its type's first version, or a later one whose
// form it uses, up to Version (or only 1 for a form that later versions
// read differently).
func versions(cmd *fsmpb.Command) (lo, hi uint32) {
	lo, _ = Since(cmd.GetType())
	hi = Version
	if p := cmd.GetPublish(); cmd.GetType() == fsmpb.CommandType_COMMAND_TYPE_PUBLISH {
		switch {
		case len(p.GetRevisions()) > 0: // version 1 form: stored keys apart
			hi = 1
		case len(p.GetVerificationCodeHashes()) > 0:
			lo = VerificationCodeUploads
		case p.GetAuthorityKid() != "" || p.GetHasToken() || len(p.GetTokenKeys()) > 0 || p.GetReviseOnly():
			lo = 2 // version 2 form: the state machine decides
		}
	}

	if cmd.GetPutTrust().GetStartSeq() > 0 || len(cmd.GetSeal().GetPaddingPicks()) > 0 {
		lo = 3 // earlier versions know neither start sequences nor picks
	}
	if p := cmd.GetSetPolicy(); p.GetSmsPerHour() > 0 || p.GetSmsPerNumberPerDay() > 0 || p.GetCodesPerProviderPerDay() > 0 {
		lo = RegionSMSQuota // earlier versions would drop the quotas
	}
	if c := cmd.GetIssueVerificationCode(); c.GetBulkRun() != "" || len(c.GetSealedCode()) > 0 {
		lo = BulkRuns
	}
	if cmd.GetPutTrust().GetKind() != "" {
		lo = GAENImport // earlier versions would take it for a region
	}
	if cmd.GetPutAuthority().GetJwksUrl() != "" {
		lo = JWKSAuthorities // earlier versions would keep no URL
	}
	if len(cmd.GetPutUser().GetInviteHash()) > 0 {
		lo = Invitations // earlier versions would keep no invitation
	}
	if cmd.GetPutApiKey().GetKind() == "stats" {
		lo = StatsAPIKeys // earlier versions refuse the kind
	}
	if cmd.GetLogin().GetUnlock() {
		lo = SignInPerClient // earlier versions would count it a failure
	}
	if cmd.GetSeal().GetFixedSize() || cmd.GetSetPolicy().GetPaddingKeysPerDay() > 0 {
		lo = DayPadding // earlier versions would ignore them
	}
	return lo, hi
}

// ErrUpgradePending means a command needs a version that not every member
// of the region applies yet; it can be proposed once every member runs a
// build that knows it (a rolling upgrade in progress).
type ErrUpgradePending struct {
	Type         fsmpb.CommandType
	Need, Region uint32
}

func (e *ErrUpgradePending) Error() string {
	return fmt.Sprintf("%v needs command version %d; every member of the region applies version %d: finish upgrading the region", e.Type, e.Need, e.Region)
}

// Stamp sets the version a command goes out with: the newest version the
// whole region applies (agreed), within the versions in which this build
// writes the command as built. It fails, changing nothing, when the region
// does not apply that version yet or the type is unknown. The node that
// builds a command stamps it; nobody changes the version after that.
func Stamp(cmd *fsmpb.Command, agreed uint32) error {
	if _, ok := Since(cmd.GetType()); !ok {
		return fmt.Errorf("unknown command type %v", cmd.GetType())
	}
	lo, hi := versions(cmd)
	v := min(max(lo, min(Version, agreed)), hi)
	if v > agreed {
		return &ErrUpgradePending{Type: cmd.GetType(), Need: v, Region: agreed}
	}
	cmd.Version = v
	return nil
}

// Check tells whether this build applies a command as stamped: a known
// type, at a version between the type's first and Version.
func Check(cmd *fsmpb.Command) error {
	since, ok := Since(cmd.GetType())
	switch v := cmd.GetVersion(); {
	case !ok:
		return fmt.Errorf("unknown command type %d", cmd.GetType())
	case v == 0 || v > Version:
		return fmt.Errorf("%v has command version %d, this build applies 1..%d", cmd.GetType(), v, Version)
	case v < since:
		return fmt.Errorf("%v has command version %d, the type exists since version %d", cmd.GetType(), v, since)
	}
	return nil
}

// ForClients tells whether a member may forward a command type to the
// leader without the region's admin token: the writes apps, providers
// and health care workers cause in volume (uploads, codes and their
// claims, sign-ins and their audit), and a member's record of itself. All
// else changes the region (authorities, policy, providers, accounts, API
// keys, trust, members, seals, roll-backs) and needs the operator's
// credential end to end, so that a member's certificate alone, stolen
// from its node, creates no operator account and no authority.
func ForClients(t fsmpb.CommandType) bool {
	switch t {
	case fsmpb.CommandType_COMMAND_TYPE_PUBLISH,
		fsmpb.CommandType_COMMAND_TYPE_ISSUE_CODE, // from members of the previous release, mid-upgrade
		fsmpb.CommandType_COMMAND_TYPE_ISSUE_VERIFICATION_CODE,
		fsmpb.CommandType_COMMAND_TYPE_CLAIM_CODE,
		fsmpb.CommandType_COMMAND_TYPE_CLAIM_TOKEN,
		fsmpb.CommandType_COMMAND_TYPE_EXPIRE_VERIFICATION_CODE,
		fsmpb.CommandType_COMMAND_TYPE_LOGIN,
		fsmpb.CommandType_COMMAND_TYPE_AUDIT,
		fsmpb.CommandType_COMMAND_TYPE_HUB_UPLOAD,       // a country's upload to the hub
		fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_CALLBACK, // and its callbacks
		fsmpb.CommandType_COMMAND_TYPE_PUT_NODE:
		return true
	}
	return false
}
