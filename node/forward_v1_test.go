package node

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// A result crosses the reply of older builds and comes back the same, for
// every result those builds knew, refusals included.
func TestV1ReplyRoundTrip(t *testing.T) {
	for _, res := range []*fsmpb.Result{
		{Value: &fsmpb.Result_Publish{Publish: &fsmpb.PublishResult{Inserted: 14, Submission: 3, Replayed: true}}},
		{Value: &fsmpb.Result_Seal{Seal: &fsmpb.SealResult{Seq: 2, Keys: 14, Padding: 36}}},
		{Value: &fsmpb.Result_Revoke{Revoke: &fsmpb.RevokeResult{Revoked: 14}}},
		{Value: &fsmpb.Result_Expire{Expire: &fsmpb.ExpireResult{Batches: 1, Keys: 2, Submissions: 3, Revocations: 4, Codes: 5}}},
		{Value: &fsmpb.Result_Import{Import: &fsmpb.ImportResult{Origin: "A", Seq: 7, Merged: 3}}},
		{Refusal: &fsmpb.Refusal{Code: "key_exists", Message: "key 01020304 is already stored"}},
		{},
	} {
		r, err := encodeV1(res)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeV1(r)
		if err != nil || !proto.Equal(back, res) {
			t.Fatalf("%v came back as %v (%v)", res, back, err)
		}
	}
}
