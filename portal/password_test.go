package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// Sign-ins hash with argon2id (19 MiB each): past maxHashing at once a
// sign-in is answered 429 at once, before it reads an account or hashes,
// so that strangers cannot run a node out of memory.
func TestSignInsPastTheHashSlotsAre429(t *testing.T) {
	p, err := New(Config{SessionKey: []byte("key")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var releases []func()
	for range maxHashing {
		release, ok := p.hashSlot()
		if !ok {
			t.Fatal("a free slot was refused")
		}
		releases = append(releases, release)
	}
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	form := url.Values{"csrf": {"tok"}, "email": {"w@lab.example"}, "password": {"any"}}
	c.Request = httptest.NewRequest(http.MethodPost, "/portal/login", strings.NewReader(form.Encode()))
	c.Request.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c.Request.AddCookie(&http.Cookie{Name: loginCSRFToken, Value: "tok"})
	p.login(c) // a nil region: reading an account would panic
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "try again") {
		t.Fatalf("a sign-in past %d at once: %d %q", maxHashing, w.Code, w.Header().Get("Retry-After"))
	}
	releases[0]()
	if release, ok := p.hashSlot(); !ok {
		t.Fatal("a released slot is not free again")
	} else {
		release()
	}
}
