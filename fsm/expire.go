package fsm

import (
	"slices"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyExpire removes what retention no longer needs, so that state and
// snapshots stay bounded under steady load. A sealed key leaves with its
// batch (files are immutable: a key stays in its file while the file is
// listed); an unpublished key leaves once its validity ended before the
// cutoff.
func applyExpire(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	cutoff := cmd.GetExpire().GetCutoffUnix()
	if cutoff <= 0 || cutoff > cmd.GetTimeUnix() {
		return refuse(command.CodeInvalidCommand, "expire cutoff %d must be in the past", cutoff)
	}
	res := &fsmpb.ExpireResult{}
	gone := map[uint32]bool{}
	for len(s.batches) > 0 && s.batches[0].EndUnix < cutoff {
		gone[s.batches[0].Seq] = true
		s.batches = s.batches[1:]
		res.Batches++
	}
	cutoffInterval := int32(cutoff / intervalSeconds)
	res.Keys = uint32(s.keys.deleteFunc(func(_ TEK, r keyRecord) bool {
		if gone[r.batch] || (r.batch == 0 && r.start+int32(r.period) < cutoffInterval) {
			s.live[r.submission]--
			return true
		}
		return false
	}))
	for i, sub := range s.submissions {
		if s.live[i] == 0 {
			delete(s.submissions, i)
			delete(s.submissionIdx, sub.ID)
			delete(s.live, i)
			res.Submissions++
		}
	}
	live := func(k TEK) bool { return !s.keys.has(k) }
	s.pending = slices.DeleteFunc(s.pending, live)
	s.revisedPending = slices.DeleteFunc(s.revisedPending, live)
	for lookup, c := range s.codes {
		if c.GetExpiresUnix() < cutoff {
			delete(s.codes, lookup)
			res.Codes++
		}
	}
	res.Codes += s.expireVerification(cutoff)
	s.expireAudit(cutoff)
	for origin, kept := range s.foreign {
		if s.foreign[origin] = slices.DeleteFunc(kept, func(fb *fsmpb.ForeignBatch) bool { return fb.GetEndUnix() < cutoff }); len(s.foreign[origin]) == 0 {
			delete(s.foreign, origin) // its high-water mark stays
		}
	}
	s.expireImported(cutoff)
	s.expireEFGS(cutoff)
	s.expireHub(cutoff)
	before := len(s.revocations)
	s.revocations = slices.DeleteFunc(s.revocations, func(r *fsmpb.Revocation) bool { return r.GetTimeUnix() < cutoff })
	res.Revocations = uint32(before - len(s.revocations))
	s.expireService(cmd.GetTimeUnix())
	return &fsmpb.Result{Value: &fsmpb.Result_Expire{Expire: res}}
}
