package fsm

import (
	"bytes"
	"slices"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyPublish stores the keys of one authorized upload, all or none. A
// submission id applied before answers its first outcome again, so an exact
// retry of an upload (after a lost answer) is harmless.
func applyPublish(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	p := cmd.GetPublish()
	if p == nil || len(p.GetSubmissionId()) != 16 {
		return refuse(command.CodeInvalidCommand, "publish needs a 16-byte submission id")
	}
	if idx, ok := s.submissionIdx[[16]byte(p.GetSubmissionId())]; ok {
		sub := s.submissions[idx]
		return publishResult(&fsmpb.PublishResult{Inserted: sub.KeyCount, Submission: idx, Replayed: true})
	}
	if len(p.GetKeys())+len(p.GetRevisions()) == 0 && len(p.GetCodeHash()) > 0 && cmd.GetVersion() < 2 {
		// A code without keys: builds of version 1 report a wrong code they
		// saw, so that the failure is counted on the code; a matching code
		// is not used.
		if _, refused := s.redeemCode(p, cmd.GetTimeUnix(), true); refused != nil {
			return refused
		}
		return refuse(command.CodeInvalidCommand, "publish has no keys")
	}
	if cmd.GetVersion() < 2 {
		return s.publishV1(cmd)
	}
	// What authorized the upload first, then its keys; the code is used
	// only by an upload that changes something.
	code, refused := s.redeem(cmd)
	if refused != nil {
		return refused
	}
	plan, refused := s.planV2(p, cmd.GetTimeUnix())
	if refused != nil {
		return refused
	}
	if len(plan.keys)+len(plan.revisions) == 0 {
		return publishResult(&fsmpb.PublishResult{Unchanged: plan.unchanged})
	}
	return publishResult(s.store(cmd, code, plan))
}

// redeem checks the one-time code a publish of version 2 or later names:
// a verification code from version 5, a code of versions 1-4 by its lookup
// (nil: a certificate upload).
func (s *state) redeem(cmd *fsmpb.Command) (*codeUse, *fsmpb.Result) {
	p, now := cmd.GetPublish(), cmd.GetTimeUnix()
	switch {
	case len(p.GetVerificationCodeHashes()) > 0 && cmd.GetVersion() >= command.VerificationCodeUploads:
		return s.redeemVerificationCode(p, now)
	case len(p.GetVerificationCodeHashes()) > 0:
		return nil, refuse(command.CodeInvalidCommand, "a verification code upload needs command version %d", command.VerificationCodeUploads)
	case len(p.GetCodeHash()) > 0:
		c, refused := s.redeemCode(p, now, false)
		if refused != nil {
			return nil, refused
		}
		return legacyUse(c), nil
	}
	return nil, nil
}

// publishV1 applies a version 1 publish in the order the builds that wrote
// it did: keys and revisions checked, the code redeemed (a wrong one
// counted), then stored keys refused.
func (s *state) publishV1(cmd *fsmpb.Command) *fsmpb.Result {
	p := cmd.GetPublish()
	plan, refused := s.planV1(p)
	if refused != nil {
		return refused
	}
	var code *codeUse
	if len(p.GetCodeHash()) > 0 {
		c, refused := s.redeemCode(p, cmd.GetTimeUnix(), true)
		if refused != nil {
			return refused
		}
		code = legacyUse(c)
	}
	for _, k := range plan.keys {
		if s.keys.has(k.Data) {
			return refuse(command.CodeKeyExists, "key %x is already stored", k.Data[:4])
		}
	}
	return publishResult(s.store(cmd, code, plan))
}

// publishPlan is what a publish changes: new keys to store and stored keys
// to revise; unchanged counts the stored keys sent again as they are.
type publishPlan struct {
	keys, revisions []Key
	unchanged       uint32
}

// planV1 reads a version 1 publish: new keys and revisions apart, as the
// API split them before proposing.
func (s *state) planV1(p *fsmpb.Publish) (publishPlan, *fsmpb.Result) {
	all, err := decodeKeys(append(slices.Clone(p.GetKeys()), p.GetRevisions()...))
	if err != nil {
		return publishPlan{}, refusal(err)
	}
	plan := publishPlan{keys: all[:len(p.GetKeys())], revisions: all[len(p.GetKeys()):]}
	for _, k := range plan.revisions {
		if refused := s.checkRevision(k); refused != nil {
			return publishPlan{}, refused
		}
	}
	return plan, nil
}

// planV2 decides, from the stored keys, what each key of a version 2
// publish is: new (stored), a resend (the same report type: left as it
// is) or a revision (checked against the GAEN rules). A stored key needs
// the upload's revision token to cover it, as in the reference server.
func (s *state) planV2(p *fsmpb.Publish, now int64) (publishPlan, *fsmpb.Result) {
	keys, err := decodeKeys(p.GetKeys())
	if err != nil {
		return publishPlan{}, refusal(err)
	}
	if refused := s.checkAuthorityKey(p, now); refused != nil {
		return publishPlan{}, refused
	}
	var plan publishPlan
	for _, k := range keys {
		r, stored := s.keys.find(k.Data)
		switch {
		case !stored && p.GetReviseOnly(): // a first negative report stores nothing
		case !stored:
			plan.keys = append(plan.keys, k)
		case !tokenCovers(p, k.Data):
			code, msg := command.CodeMissingToken, "key %x is already stored; sending it again needs the revision token"
			if p.GetHasToken() {
				code, msg = command.CodeInvalidToken, "the revision token does not cover stored key %x"
			}
			return publishPlan{}, refuse(code, msg, k.Data[:4])
		case r.start != k.RollingStart || int32(r.period) != k.RollingPeriod:
			return publishPlan{}, refuse(command.CodeInvalidToken, "key %x: interval differs from the stored key", k.Data[:4])
		case int32(r.report) == k.ReportType:
			plan.unchanged++
		default:
			if refused := s.checkRevision(k); refused != nil {
				return publishPlan{}, refused
			}
			plan.revisions = append(plan.revisions, k)
		}
	}
	return plan, nil
}

func tokenCovers(p *fsmpb.Publish, k TEK) bool {
	return slices.ContainsFunc(p.GetTokenKeys(), func(b []byte) bool { return bytes.Equal(b, k[:]) })
}

// checkAuthorityKey refuses a certificate upload whose verifying key (the
// issuer's key named by kid) was removed or is outside its validity at the
// command's time: a node whose copy lagged cannot admit what the region
// no longer trusts. Code uploads carry no certificate.
func (s *state) checkAuthorityKey(p *fsmpb.Publish, now int64) *fsmpb.Result {
	if len(p.GetCodeHash()) > 0 || len(p.GetVerificationCodeHashes()) > 0 {
		return nil
	}
	if p.GetIssuer() == "" || p.GetAuthorityKid() == "" {
		return refuse(command.CodeInvalidCommand, "a certificate upload names its issuer and key id")
	}
	i := slices.IndexFunc(s.authorities[p.GetIssuer()].GetKeys(), func(k *fsmpb.AuthorityKey) bool { return k.GetKid() == p.GetAuthorityKid() })
	if i < 0 {
		return refuse(command.CodeAuthorityKey, "health authority %q has no key %q", p.GetIssuer(), p.GetAuthorityKid())
	}
	k := s.authorities[p.GetIssuer()].GetKeys()[i]
	if now < k.GetValidFromUnix() || k.GetValidThroughUnix() != 0 && now >= k.GetValidThroughUnix() {
		return refuse(command.CodeAuthorityKey, "key %q of %q is not valid at %d", k.GetKid(), p.GetIssuer(), now)
	}
	return nil
}

// store records the submission and applies the plan.
func (s *state) store(cmd *fsmpb.Command, code *codeUse, plan publishPlan) *fsmpb.PublishResult {
	p := cmd.GetPublish()
	idx := s.nextSubmission
	s.nextSubmission++
	sub := &Submission{
		Index: idx, ID: [16]byte(p.GetSubmissionId()), TimeUnix: submissionTime(cmd), AppID: intern(p.GetAppId()), Issuer: intern(p.GetIssuer()),
		CertificateDigest: bytes.Clone(p.GetCertificateDigest()), Traveler: p.GetTraveler(),
		KeyCount: uint32(len(plan.keys)),
	}
	if code != nil {
		code.claim(cmd.GetTimeUnix())
		sub.Provider, sub.CodeHash, sub.Issuer = intern(code.provider), bytes.Clone(code.hash), ""
	}
	s.submissions[idx] = sub
	s.live[idx] = uint32(len(plan.keys))
	s.submissionIdx[sub.ID] = idx
	for _, k := range plan.keys {
		k.Submission = idx
		s.keys.set(k.Data, k.record())
		s.pending = append(s.pending, k.Data)
	}
	s.revise(plan.revisions)
	return &fsmpb.PublishResult{Inserted: uint32(len(plan.keys)), Revised: uint32(len(plan.revisions)),
		Submission: idx, Unchanged: plan.unchanged}
}

// SubmissionTimeStep is how finely a submission records when it came,
// from command version 5: its hour, since an upload's time is a fact
// about a person (that is all a roll-back "since" or a chart needs).
const SubmissionTimeStep = 3600

// submissionTime is the time a publish's submission records.
func submissionTime(cmd *fsmpb.Command) int64 {
	t := cmd.GetTimeUnix()
	if cmd.GetVersion() >= command.HourlySubmissions {
		t -= t % SubmissionTimeStep
	}
	return t
}

func publishResult(r *fsmpb.PublishResult) *fsmpb.Result {
	return &fsmpb.Result{Value: &fsmpb.Result_Publish{Publish: r}}
}

// revisionAllowed tells whether an uploader may revise a key from one
// report type to another (GAEN reference rules, export codes: 1 confirmed,
// 2 likely, 3 user-report, 5 negative/revoked).
func revisionAllowed(from, to int32) bool {
	switch from {
	case 2: // likely
		return to == 1 || to == ReportTypeRevoked
	case 3: // user-report
		return to == 1 || to == 2 || to == ReportTypeRevoked
	}
	return false
}

// checkRevision refuses the revision of an unknown or withdrawn key, of a
// key revised before, and transitions the rules do not allow.
func (s *state) checkRevision(k Key) *fsmpb.Result {
	r, ok := s.keys.find(k.Data)
	switch {
	case !ok || r.revoked && !r.revised:
		return refuse(command.CodeUnknownKey, "key %x to revise is not stored (or was withdrawn)", k.Data[:4])
	case r.revised:
		return refuse(command.CodeKeyAlreadyRevised, "key %x was revised before", k.Data[:4])
	case !revisionAllowed(int32(r.report), k.ReportType):
		return refuse(command.CodeBadTransition, "key %x: report type %d cannot become %d", k.Data[:4], r.report, k.ReportType)
	}
	return nil
}

// revise applies checked revisions; a published key is published again,
// with its new report type, in the next batch's revised keys. A key revised
// to negative is withdrawn.
func (s *state) revise(revisions []Key) {
	for _, k := range revisions {
		r := s.keys.at(k.Data)
		r.report, r.risk, r.onset, r.hasOnset = uint8(k.ReportType), uint8(k.TransmissionRisk), int8(k.DaysSinceOnset), k.HasDaysSinceOnset
		r.revised = true
		r.revoked = k.ReportType == ReportTypeRevoked
		s.keys.set(k.Data, r)
		if r.batch != 0 {
			s.revisedPending = append(s.revisedPending, k.Data)
		}
	}
}

// decodeKeys checks the invariants the state relies on (sizes and ranges);
// the GAEN rules that depend on the clock are checked before proposing.
func decodeKeys(in []*fsmpb.Key) ([]Key, *command.Error) {
	if len(in) == 0 {
		return nil, command.Refused(command.CodeInvalidCommand, "publish has no keys and no revisions")
	}
	seen := make(map[TEK]bool, len(in))
	out := make([]Key, 0, len(in))
	for i, pk := range in {
		k, err := KeyFromProto(pk)
		if err != nil {
			return nil, command.Refused(command.CodeInvalidCommand, "key %d: %v", i, err)
		}
		if seen[k.Data] {
			return nil, command.Refused(command.CodeInvalidCommand, "key %d appears twice", i)
		}
		seen[k.Data] = true
		out = append(out, k)
	}
	return out, nil
}
