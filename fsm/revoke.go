package fsm

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyRevoke withdraws the keys one selector names. Published keys go to
// the next batch's revised keys; unpublished ones are never published.
func applyRevoke(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	rv := cmd.GetRevoke()
	if rv.GetReason() == "" {
		return refuse(command.CodeInvalidCommand, "a revocation needs a reason")
	}
	if since := rv.GetSinceUnix(); cmd.GetVersion() >= command.HourlySubmissions && since%SubmissionTimeStep != 0 {
		// Submissions know their hour only: "since" takes in all of its hour.
		rv = proto.CloneOf(rv)
		rv.SinceUnix = since - since%SubmissionTimeStep
	}
	keys, selector, resp := s.selectRevocation(rv)
	if resp != nil {
		return resp
	}
	n := 0
	for _, k := range keys {
		r := s.keys.at(k)
		if r.revoked {
			continue
		}
		r.revoked = true
		s.keys.set(k, r)
		n++
		if r.batch != 0 {
			s.revisedPending = append(s.revisedPending, k)
		} // an unpublished key stays in pending; the next seal drops it
	}
	s.revocations = append(s.revocations, &fsmpb.Revocation{
		TimeUnix: cmd.GetTimeUnix(), Reason: rv.GetReason(), Selector: selector, Keys: uint32(n),
	})
	return &fsmpb.Result{Value: &fsmpb.Result_Revoke{Revoke: &fsmpb.RevokeResult{Revoked: uint32(n)}}}
}

// selectRevocation resolves the selector to stored keys, sorted; a selector
// naming nothing that exists is refused.
func (s *state) selectRevocation(rv *fsmpb.Revoke) ([]TEK, string, *fsmpb.Result) {
	set := 0
	for _, on := range []bool{len(rv.GetSubmissionId()) > 0, len(rv.GetKeys()) > 0, rv.GetIssuer() != "",
		rv.GetProvider() != "", len(rv.GetCodeHash()) > 0} {
		if on {
			set++
		}
	}
	if set != 1 {
		r := refuse(command.CodeInvalidCommand, "a revocation names exactly one of: submission, keys, issuer, provider, code")
		return nil, "", r
	}
	switch {
	case len(rv.GetSubmissionId()) > 0:
		idx, ok := s.submissionIdx[[16]byte(pad16(rv.GetSubmissionId()))]
		if !ok || len(rv.GetSubmissionId()) != 16 {
			r := refuse(command.CodeUnknownSubmission, "no submission %x", rv.GetSubmissionId())
			return nil, "", r
		}
		return s.keysWhere(func(r keyRecord) bool { return r.submission == idx }), "submission " + hex.EncodeToString(rv.GetSubmissionId()), nil
	case len(rv.GetKeys()) > 0:
		var out []TEK
		for _, k := range rv.GetKeys() {
			if !s.keys.has(TEK(pad16(k))) || len(k) != KeyLen {
				r := refuse(command.CodeUnknownKey, "no stored key %x", k)
				return nil, "", r
			}
			out = append(out, TEK(k))
		}
		slices.SortFunc(out, compareTEK)
		return slices.Compact(out), fmt.Sprintf("%d keys", len(out)), nil
	case rv.GetProvider() != "":
		if _, ok := s.providers[rv.GetProvider()]; !ok {
			r := refuse(command.CodeUnknownProvider, "no provider %q", rv.GetProvider())
			return nil, "", r
		}
		return s.submissionKeys(func(sub *Submission) bool {
			return sub.Provider == rv.GetProvider() && sub.TimeUnix >= rv.GetSinceUnix()
		}), fmt.Sprintf("provider %q since %d", rv.GetProvider(), rv.GetSinceUnix()), nil
	case len(rv.GetCodeHash()) > 0:
		keys := s.submissionKeys(func(sub *Submission) bool { return bytes.Equal(sub.CodeHash, rv.GetCodeHash()) })
		if len(keys) == 0 {
			r := refuse(command.CodeUnknownSubmission, "no upload with that code")
			return nil, "", r
		}
		return keys, "code " + hex.EncodeToString(rv.GetCodeHash()[:4]), nil
	default:
		if _, ok := s.authorities[rv.GetIssuer()]; !ok && !s.issuerUsed(rv.GetIssuer()) {
			r := refuse(command.CodeUnknownAuthority, "no health authority or submission with issuer %q", rv.GetIssuer())
			return nil, "", r
		}
		return s.submissionKeys(func(sub *Submission) bool {
			return sub.Issuer == rv.GetIssuer() && sub.TimeUnix >= rv.GetSinceUnix()
		}), fmt.Sprintf("issuer %q since %d", rv.GetIssuer(), rv.GetSinceUnix()), nil
	}
}

// submissionKeys returns the keys of the submissions that match, sorted.
func (s *state) submissionKeys(match func(*Submission) bool) []TEK {
	subs := map[uint32]bool{}
	for i, sub := range s.submissions {
		if match(sub) {
			subs[i] = true
		}
	}
	return s.keysWhere(func(r keyRecord) bool { return subs[r.submission] })
}

func (s *state) issuerUsed(issuer string) bool {
	for _, sub := range s.submissions {
		if sub.Issuer == issuer {
			return true
		}
	}
	return false
}

// keysWhere returns the stored keys whose record matches, sorted.
func (s *state) keysWhere(match func(keyRecord) bool) []TEK {
	var out []TEK
	for k, r := range s.keys.all() {
		if match(r) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compareTEK)
	return out
}

// pad16 returns b as 16 bytes for map lookups (callers check the length).
func pad16(b []byte) []byte {
	out := make([]byte, KeyLen)
	copy(out, b)
	return out
}

// Revocations returns every revocation still kept, oldest first.
func (f *FSM) Revocations() []*fsmpb.Revocation {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*fsmpb.Revocation, len(f.state.revocations))
	for i, r := range f.state.revocations {
		out[i] = &fsmpb.Revocation{TimeUnix: r.GetTimeUnix(), Reason: r.GetReason(), Selector: r.GetSelector(), Keys: r.GetKeys()}
	}
	return out
}
