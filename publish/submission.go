package publish

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// SubmissionID names an upload by what identifies it: what authorized it
// (the certificate's digest, or a code's keyed hash) and its keys (data,
// start and period; the certificate's tekmac binds the rest). An exact
// retry of an upload (a lost answer, a 503) gets the same id, so the state
// machine answers it with the first outcome instead of taking its keys for
// a resend; fields the server derives (days since onset, filled-in risk)
// do not enter, so a retry after midnight is still the same upload.
func SubmissionID(authorization []byte, keys []*fsmpb.Key, reviseOnly bool) [16]byte {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b *fsmpb.Key) int { return bytes.Compare(a.GetKeyData(), b.GetKeyData()) })
	h := sha256.New()
	h.Write([]byte("covid-backend submission id v1\x00"))
	h.Write([]byte{byte(len(authorization))})
	h.Write(authorization)
	if reviseOnly {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	var b [24]byte
	for _, k := range sorted {
		copy(b[:16], k.GetKeyData())
		binary.BigEndian.PutUint32(b[16:], uint32(k.GetRollingStart()))
		binary.BigEndian.PutUint32(b[20:], uint32(k.GetRollingPeriod()))
		h.Write(b[:])
	}
	return [16]byte(h.Sum(nil))
}
