package sealed_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/covid-backend/covid-backend/sealed"
)

// A sealed value opens with any code key of the region and only for its
// owner, in its own box; nothing else opens.
func TestSealOpen(t *testing.T) {
	box, other := sealed.Box{Mark: "\x00t1", Purpose: "test"}, sealed.Box{Mark: "\x00t1", Purpose: "other"}
	old, current := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	s := box.Seal(old, "u1", []byte("12345678"))
	if bytes.Contains(s, []byte("12345678")) || !box.Sealed(s) {
		t.Fatal("the sealed value holds the secret in clear, or lacks its mark")
	}
	for _, tc := range []struct {
		name   string
		box    sealed.Box
		keys   [][]byte
		owner  string
		stored []byte
		ok     bool
	}{
		{"its key among the region's", box, [][]byte{current, old}, "u1", s, true},
		{"another owner", box, [][]byte{current, old}, "u2", s, false},
		{"keys without its own", box, [][]byte{current}, "u1", s, false},
		{"another box", other, [][]byte{old}, "u1", s, false},
		{"cut short", box, [][]byte{old}, "u1", s[:6], false},
		{"in clear", box, [][]byte{old}, "u1", []byte("12345678"), false},
	} {
		got, err := tc.box.Open(tc.keys, tc.owner, tc.stored)
		if tc.ok != (err == nil) || tc.ok && string(got) != "12345678" || !tc.ok && !errors.Is(err, sealed.ErrNotOpened) {
			t.Errorf("%s: %q %v", tc.name, got, err)
		}
	}
}
