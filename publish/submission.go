package publish

import (
	"bytes"
	"crypto/sha256"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// SubmissionID names an upload by what identifies it: what authorized it
// (the certificate's digest, or a code's keyed hash) and the keys it
// carries, with every field the region stores. An exact retry of an upload
// (a lost answer, a 503) gets the same id, so the state machine answers it
// with the first outcome instead of taking its keys for a resend.
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
	opts := proto.MarshalOptions{Deterministic: true}
	for _, k := range sorted {
		b, _ := opts.Marshal(k) // a Key always encodes
		h.Write([]byte{byte(len(b))})
		h.Write(b)
	}
	return [16]byte(h.Sum(nil))
}
