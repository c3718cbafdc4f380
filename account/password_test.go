package account

import (
	"strings"
	"testing"
)

// A hash is argon2id with OWASP's minimum cost and a salt of its own; it
// tells the password apart, and malformed or too costly encodings are
// refused.
func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse battery staple")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if !CheckPassword(h, "correct horse battery staple") || CheckPassword(h, "correct horse battery stapler") {
		t.Fatal("the hash does not tell the password apart")
	}
	if HashPassword("x") == HashPassword("x") {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2i$v=19$m=19456,t=2,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=2,p=1$AAAA$AAAA"} {
		if CheckPassword(bad, "x") {
			t.Errorf("%q accepted", bad)
		}
	}
}
