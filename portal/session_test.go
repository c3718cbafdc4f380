package portal

import (
	"strings"
	"testing"
	"time"
)

// A session cookie is signed: a changed field or another key is refused;
// it ends after 20 minutes idle or 20 hours in all.
func TestSessionCookie(t *testing.T) {
	key, other := []byte("key one"), []byte("key two")
	now := time.Unix(1_800_000_000, 0)
	s := session{Email: "w@lab.example", Epoch: 3, Issued: now.Unix(), LastSeen: now.Unix()}
	enc := s.encode(key)
	got, err := decodeSession(key, enc)
	if err != nil || got != s {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	forged := session{Email: "boss@lab.example", Epoch: 3, Issued: s.Issued, LastSeen: s.LastSeen}.encode(other)
	body, _, _ := strings.Cut(forged, ".")
	_, sig, _ := strings.Cut(enc, ".")
	for _, bad := range []string{forged, body + "." + sig, "", "x.y", enc + "x"} {
		if _, err := decodeSession(key, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if !s.live(now.Add(19*time.Minute), sessionMaxAge) || s.live(now.Add(21*time.Minute), sessionMaxAge) {
		t.Fatal("idle timeout")
	}
	s.LastSeen = now.Add(20*time.Hour - time.Minute).Unix()
	if s.live(now.Add(20*time.Hour), sessionMaxAge) {
		t.Fatal("a session outlived 20 hours")
	}
	if s.csrfToken(key) == s.csrfToken(other) || s.csrfToken(key) == (session{Email: "x", Issued: s.Issued}).csrfToken(key) {
		t.Fatal("CSRF tokens do not depend on the key and the session")
	}
}
