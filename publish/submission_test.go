package publish

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// An upload's id depends on what authorized it and on the keys (data,
// interval), not on their order nor on fields the server derives: an exact
// retry gets the same id, any other upload another.
func TestSubmissionID(t *testing.T) {
	keys := []*fsmpb.Key{
		{KeyData: []byte("aaaaaaaaaaaaaaaa"), RollingStart: 100, RollingPeriod: 144, TransmissionRisk: 2, ReportType: 1},
		{KeyData: []byte("bbbbbbbbbbbbbbbb"), RollingStart: 244, RollingPeriod: 144, TransmissionRisk: 2, ReportType: 1},
	}
	auth := []byte("certificate digest")
	base := SubmissionID(auth, keys, false)
	changed := func(f func(k *fsmpb.Key)) []*fsmpb.Key {
		c := []*fsmpb.Key{proto.CloneOf(keys[0]), proto.CloneOf(keys[1])}
		f(c[1])
		return c
	}
	if got := SubmissionID(auth, []*fsmpb.Key{keys[1], keys[0]}, false); got != base {
		t.Error("the order of the keys changed the id")
	}
	derived := changed(func(k *fsmpb.Key) { k.HasDaysSinceOnset, k.DaysSinceOnset, k.TransmissionRisk = true, -3, 5 })
	if SubmissionID(auth, derived, false) != base {
		t.Error("fields the server derives changed the id")
	}
	others := map[string][16]byte{
		"other authorization": SubmissionID([]byte("another digest"), keys, false),
		"revise only":         SubmissionID(auth, keys, true),
		"a key less":          SubmissionID(auth, keys[:1], false),
		"other key":           SubmissionID(auth, changed(func(k *fsmpb.Key) { k.KeyData = []byte("cccccccccccccccc") }), false),
		"other start":         SubmissionID(auth, changed(func(k *fsmpb.Key) { k.RollingStart++ }), false),
		"other period":        SubmissionID(auth, changed(func(k *fsmpb.Key) { k.RollingPeriod-- }), false),
	}
	for name, id := range others {
		if id == base {
			t.Errorf("%s: same id", name)
		}
	}
}

// The token answered to an upload covers its keys and those of the token it
// came with that are still within retention, newest first when too many.
func TestTokenKeys(t *testing.T) {
	k := func(b byte, start int32) RevisableKey {
		return RevisableKey{Key: [16]byte{b}, Start: start, Period: 144}
	}
	previous := []RevisableKey{k(1, 1000), k(2, 1144), k(3, 100)} // key 3 ended long ago
	upload := []RevisableKey{k(2, 1144), k(4, 1288)}
	got := TokenKeys(previous, upload, 900)
	want := []RevisableKey{k(4, 1288), k(2, 1144), k(1, 1000)}
	if len(got) != len(want) {
		t.Fatalf("TokenKeys = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("TokenKeys = %v, want %v", got, want)
		}
	}
	var many []RevisableKey
	for i := range TokenMaxKeys + 10 {
		many = append(many, RevisableKey{Key: [16]byte{byte(i), byte(i >> 8)}, Start: int32(i), Period: 1})
	}
	capped := TokenKeys(many, nil, 0)
	if len(capped) != TokenMaxKeys || capped[0].Start != int32(TokenMaxKeys+9) {
		t.Fatalf("capped token: %d keys, newest %d", len(capped), capped[0].Start)
	}
	if _, err := SealRevisionToken(RevisionTokenKey("s"), capped); err != nil {
		t.Fatalf("a full token does not seal: %v", err)
	}
	if _, err := SealRevisionToken(RevisionTokenKey("s"), many); err == nil {
		t.Fatal("a token over the limit sealed")
	}
}

// A decoy's token is as long as the token a real answer to the same
// request carries.
func TestDecoyRevisionTokenLength(t *testing.T) {
	key := RevisionTokenKey("region")
	keys := func(n int) []RevisableKey {
		out := make([]RevisableKey, n)
		for i := range out {
			out[i] = RevisableKey{Key: [16]byte{byte(i)}, Start: int32(i), Period: 144}
		}
		return out
	}
	seal := func(k []RevisableKey) string {
		tok, err := SealRevisionToken(key, k)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct {
		name     string
		upload   int
		previous []RevisableKey
	}{
		{"first upload", 14, nil},
		{"a full upload", 30, nil},
		{"a resend with a padded token", 14, keys(14)},
		{"a resend with a full token", 10, keys(40)},
	} {
		prev := ""
		if c.previous != nil {
			prev = seal(c.previous)
		}
		real := seal(TokenKeys(c.previous, keys(c.upload), 0))
		if got := DecoyRevisionToken(c.upload, prev); len(got) != len(real) {
			t.Errorf("%s: decoy token of %d characters, real %d", c.name, len(got), len(real))
		}
	}
}
