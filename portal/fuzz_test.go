package portal

import (
	"testing"
	"time"
)

// FuzzDecodeSession: a session cookie is whatever a stranger sends; it is
// refused unless signed with the key, and never panics.
func FuzzDecodeSession(f *testing.F) {
	key := []byte("fuzz session key")
	good := session{Email: "w@lab.example", Epoch: 1, Issued: 1_800_000_000, LastSeen: 1_800_000_000}.encode(key)
	for _, s := range []string{good, "", ".", "a.b", good + "x", "d3xsYWIuZXhhbXBsZXwxfDF8MQ.sig"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := decodeSession(key, raw)
		if err != nil {
			return
		}
		if again := s.encode(key); again != raw {
			t.Fatalf("%q decoded to %+v, which encodes as %q: a cookie not signed as made", raw, s, again)
		}
		_ = s.live(time.Unix(1_800_000_000, 0), sessionMaxAge)
	})
}
