package fsm

import (
	"bytes"

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
	keys, err := decodeKeys(p.GetKeys())
	if err != nil {
		return Response{Err: err}
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
	return Response{Value: PublishResult{Inserted: len(keys), Submission: idx}}
}

// decodeKeys checks the invariants the state relies on (sizes and ranges);
// the GAEN rules that depend on the clock are checked before proposing.
func decodeKeys(in []*fsmpb.Key) ([]Key, error) {
	if len(in) == 0 {
		return nil, &Error{Code: CodeInvalidCommand, Message: "publish has no keys"}
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
