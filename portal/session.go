package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Session lifetimes, as the reference's: 20 hours at most, 20 minutes idle.
const (
	sessionMaxAge  = 20 * time.Hour
	sessionIdle    = 20 * time.Minute
	pendingMaxAge  = 5 * time.Minute
	sessionCookie  = "covid_session"
	pendingCookie  = "covid_2fa"
	loginCSRFToken = "covid_login_csrf"
)

// session is what a session cookie says: who, under which session epoch,
// since when and last seen when. The cookie is signed with the region's
// session key, so any node checks it; the account's epoch in the
// replicated state ends it.
type session struct {
	Email            string
	Epoch            uint32
	Issued, LastSeen int64
}

var errBadSession = errors.New("no valid session")

func (s session) encode(key []byte) string {
	body := strings.Join([]string{s.Email, strconv.FormatUint(uint64(s.Epoch), 10),
		strconv.FormatInt(s.Issued, 10), strconv.FormatInt(s.LastSeen, 10)}, "|")
	b := base64.RawURLEncoding.EncodeToString([]byte(body))
	return b + "." + sign(key, "session", b)
}

func decodeSession(key []byte, value string) (session, error) {
	b, sig, ok := strings.Cut(value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(sign(key, "session", b))) {
		return session{}, errBadSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(b)
	parts := strings.Split(string(raw), "|")
	if err != nil || len(parts) != 4 {
		return session{}, errBadSession
	}
	epoch, err1 := strconv.ParseUint(parts[1], 10, 32)
	issued, err2 := strconv.ParseInt(parts[2], 10, 64)
	seen, err3 := strconv.ParseInt(parts[3], 10, 64)
	if errors.Join(err1, err2, err3) != nil {
		return session{}, errBadSession
	}
	return session{Email: parts[0], Epoch: uint32(epoch), Issued: issued, LastSeen: seen}, nil
}

// live tells whether the session has neither outlived its maximum age nor
// been idle too long.
func (s session) live(now time.Time, maxAge time.Duration) bool {
	return now.Unix() < s.Issued+int64(maxAge/time.Second) && now.Unix() < s.LastSeen+int64(sessionIdle/time.Second)
}

// csrfToken is the token every form of the session carries.
func (s session) csrfToken(key []byte) string {
	return sign(key, "csrf", s.Email+"|"+strconv.FormatUint(uint64(s.Epoch), 10)+"|"+strconv.FormatInt(s.Issued, 10))
}

func sign(key []byte, purpose, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("covid-backend portal " + purpose + "\x00" + msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// randomToken is a fresh random value for a sign-in form's CSRF cookie.
func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b) // never fails (crypto/rand aborts the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
