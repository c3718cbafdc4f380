package fsm

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// storedKeyOf reads b as the snapshot reader did before decodeStoredKey:
// proto.Unmarshal, then KeyFromProto.
func storedKeyOf(b []byte) (Key, error) {
	var rec fsmpb.StoredKey
	if err := proto.Unmarshal(b, &rec); err != nil {
		return Key{}, err
	}
	k, err := KeyFromProto(rec.GetKey())
	if err != nil {
		return Key{}, err
	}
	k.Submission, k.Batch, k.Revoked, k.Revised = rec.GetSubmission(), rec.GetBatch(), rec.GetRevoked(), rec.GetRevised()
	return k, nil
}

// FuzzDecodeStoredKey holds decodeStoredKey to proto.Unmarshal: for any
// bytes, both refuse them or both read the same key.
func FuzzDecodeStoredKey(f *testing.F) {
	data := make([]byte, KeyLen)
	for _, rec := range []*fsmpb.StoredKey{
		{Key: &fsmpb.Key{KeyData: data, RollingStart: 2_900_000, RollingPeriod: 144, TransmissionRisk: 3, ReportType: 1}, Submission: 7, Batch: 2},
		{Key: &fsmpb.Key{KeyData: data, RollingPeriod: 1, HasDaysSinceOnset: true, DaysSinceOnset: -14}, Revoked: true, Revised: true},
		{Key: &fsmpb.Key{KeyData: data[:3], RollingPeriod: 144}},
		{},
	} {
		b, err := proto.Marshal(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// The key message twice (merged), an unknown field, a field of an
		// unexpected wire type.
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 8))
		b = protowire.AppendVarint(protowire.AppendTag(b, 99, protowire.VarintType), 1)
		f.Add(protowire.AppendFixed32(protowire.AppendTag(b, 2, protowire.Fixed32Type), 5))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := storedKeyOf(b)
		var rec storedKey
		err := decodeStoredKey(b, &rec)
		var got Key
		if err == nil {
			got, err = rec.key()
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeStoredKey error %v, proto.Unmarshal and KeyFromProto %v", err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeStoredKey read %+v, proto.Unmarshal %+v", got, want)
		}
	})
}
