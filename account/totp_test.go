package account

import (
	"bytes"
	"testing"
)

// A sealed secret opens with any code key in force, for its own account
// only, and holds no trace of the secret; a secret of the previous release
// (in clear) reads as it is.
func TestSealTOTP(t *testing.T) {
	old, current := []byte("old code key"), []byte("current code key")
	const secret = "JBSWY3DPEHPK3PXP"
	sealed := SealTOTP(old, "w@lab.example", secret)
	if !TOTPSealed(sealed) || bytes.Contains(sealed, []byte(secret)) || bytes.Equal(sealed, SealTOTP(old, "w@lab.example", secret)) {
		t.Fatalf("sealed %x", sealed)
	}
	for _, tc := range []struct {
		name   string
		keys   [][]byte
		email  string
		stored []byte
		want   string
		ok     bool
	}{
		{"after a key rotation", [][]byte{current, old}, "w@lab.example", sealed, secret, true},
		{"without its key", [][]byte{current}, "w@lab.example", sealed, "", false},
		{"moved to another account", [][]byte{old}, "boss@lab.example", sealed, "", false},
		{"cut short", [][]byte{old}, "w@lab.example", sealed[:len(totpBox().Mark)+4], "", false},
		{"in clear, from the previous release", [][]byte{current}, "w@lab.example", []byte(secret), secret, true},
	} {
		got, err := OpenTOTP(tc.keys, tc.email, tc.stored)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}
}
