package fsm

import (
	"bytes"
	"slices"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// PublishResult is the outcome of a publish command.
type PublishResult struct {
	// Inserted is how many keys the submission stored.
	Inserted int `json:"inserted"`
	// Submission is the index of the submission record.
	Submission uint32 `json:"submission"`
	// Replayed is true when this submission id had already been applied and
	// the first outcome is returned unchanged.
	Replayed bool `json:"replayed"`
	// Revised counts the keys whose report type this upload revised.
	Revised int `json:"revised"`
}

// applyPublish stores the keys of one authorized upload, all or none.
func applyPublish(s *state, cmd *fsmpb.Command) Response {
	p := cmd.GetPublish()
	if p == nil || len(p.GetSubmissionId()) != 16 {
		return refuse(CodeInvalidCommand, "publish needs a 16-byte submission id")
	}
	id := [16]byte(p.GetSubmissionId())
	if idx, ok := s.submissionIdx[id]; ok {
		sub := s.submissions[idx]
		return Response{Value: PublishResult{Inserted: int(sub.KeyCount), Submission: idx, Replayed: true}}
	}
	if len(p.GetKeys())+len(p.GetRevisions()) == 0 && len(p.GetCodeHash()) > 0 {
		// A code without keys: the API reports a wrong code it saw, so that
		// the failure is counted on the code; a matching code is not used.
		if _, refused := s.redeemCode(p, cmd.GetTimeUnix()); refused != nil {
			return *refused
		}
		return refuse(CodeInvalidCommand, "publish has no keys")
	}
	all, err := decodeKeys(append(slices.Clone(p.GetKeys()), p.GetRevisions()...))
	if err != nil {
		return Response{Err: err}
	}
	keys, revisions := all[:len(p.GetKeys())], all[len(p.GetKeys()):]
	if resp := s.checkRevisions(revisions); resp != nil {
		return *resp
	}
	var code *fsmpb.Code
	if len(p.GetCodeHash()) > 0 {
		var refused *Response
		if code, refused = s.redeemCode(p, cmd.GetTimeUnix()); refused != nil {
			return *refused
		}
	}
	for _, k := range keys {
		if _, ok := s.keys[k.Data]; ok {
			return refuse(CodeKeyExists, "key %x is already stored", k.Data[:4])
		}
	}
	idx := s.nextSubmission
	s.nextSubmission++
	sub := &Submission{
		Index: idx, ID: id, TimeUnix: cmd.GetTimeUnix(), AppID: p.GetAppId(), Issuer: p.GetIssuer(),
		CertificateDigest: bytes.Clone(p.GetCertificateDigest()), Traveler: p.GetTraveler(),
		KeyCount: uint32(len(keys)),
	}
	if code != nil {
		code.UsedUnix = cmd.GetTimeUnix()
		sub.Provider, sub.CodeHash, sub.Issuer = code.GetProvider(), bytes.Clone(code.GetHash()), ""
	}
	s.submissions[idx] = sub
	s.live[idx] = uint32(len(keys))
	s.submissionIdx[id] = idx
	for _, k := range keys {
		k.Submission = idx
		s.keys[k.Data] = k.record()
		s.pending = append(s.pending, k.Data)
	}
	s.revise(revisions)
	return Response{Value: PublishResult{Inserted: len(keys), Revised: len(revisions), Submission: idx}}
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

// checkRevisions refuses revisions of unknown keys, of keys revised
// before, and transitions the rules do not allow.
func (s *state) checkRevisions(revisions []Key) *Response {
	for _, k := range revisions {
		r, ok := s.keys[k.Data]
		var resp Response
		switch {
		case !ok || r.revoked:
			resp = refuse(CodeUnknownKey, "key %x to revise is not stored", k.Data[:4])
		case r.revised:
			resp = refuse(CodeKeyAlreadyRevised, "key %x was revised before", k.Data[:4])
		case !revisionAllowed(int32(r.report), k.ReportType):
			resp = refuse(CodeBadTransition, "key %x: report type %d cannot become %d", k.Data[:4], r.report, k.ReportType)
		default:
			continue
		}
		return &resp
	}
	return nil
}

// revise applies checked revisions; a published key is published again,
// with its new report type, in the next batch's revised keys. A key revised
// to negative is withdrawn.
func (s *state) revise(revisions []Key) {
	for _, k := range revisions {
		r := s.keys[k.Data]
		r.report, r.risk, r.onset, r.hasOnset = uint8(k.ReportType), uint8(k.TransmissionRisk), int8(k.DaysSinceOnset), k.HasDaysSinceOnset
		r.revised = true
		r.revoked = k.ReportType == ReportTypeRevoked
		s.keys[k.Data] = r
		if r.batch != 0 {
			s.revisedPending = append(s.revisedPending, k.Data)
		}
	}
}

// decodeKeys checks the invariants the state relies on (sizes and ranges);
// the GAEN rules that depend on the clock are checked before proposing.
func decodeKeys(in []*fsmpb.Key) ([]Key, error) {
	if len(in) == 0 {
		return nil, &Error{Code: CodeInvalidCommand, Message: "publish has no keys and no revisions"}
	}
	seen := make(map[TEK]bool, len(in))
	out := make([]Key, 0, len(in))
	for i, pk := range in {
		k, err := KeyFromProto(pk)
		if err != nil {
			return nil, &Error{Code: CodeInvalidCommand, Message: "key " + itoa(i) + ": " + err.Error()}
		}
		if seen[k.Data] {
			return nil, &Error{Code: CodeInvalidCommand, Message: "key " + itoa(i) + " appears twice"}
		}
		seen[k.Data] = true
		out = append(out, k)
	}
	return out, nil
}
