package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/gin-gonic/gin"
)

// flashCookie carries what a write's answer shows once (a code just
// issued, an API key just made) across the redirect after the POST, so
// that reloading the answer shows the same code again instead of issuing
// another. The secret is never kept on a node (codes are stored hashed)
// nor put in a URL: the cookie is encrypted and authenticated with a key
// derived from the region's session key (AES-GCM), so any node opens it,
// and it names the account it is for.
const flashCookie = "covid_flash"

// flash is a cookie's content: which page it is for, the account, and
// that page's data.
type flash struct {
	Page  string          `json:"page"`
	Email string          `json:"email"`
	Data  json.RawMessage `json:"data"`
}

var errNoFlash = errors.New("no flash for this page")

func flashAEAD(sessionKey []byte) cipher.AEAD {
	m := hmac.New(sha256.New, sessionKey)
	m.Write([]byte("covid-backend portal flash"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key is always accepted
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// setFlash keeps data for page (for the signed-in account email) for
// maxAge.
func (p *Portal) setFlash(c *gin.Context, page, email string, data any, maxAge time.Duration) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(flash{Page: page, Email: email, Data: raw})
	if err != nil {
		return err
	}
	setCookie(c, flashCookie, sealFlash(p.cfg.SessionKey, plain), maxAge)
	return nil
}

func sealFlash(key, plain []byte) string {
	aead := flashAEAD(key)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce) // never fails
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(flashCookie)))
}

// readFlash opens the cookie for page and account into out.
func (p *Portal) readFlash(c *gin.Context, page, email string, out any) error {
	raw, err := c.Cookie(flashCookie)
	if err != nil {
		return errNoFlash
	}
	return openFlash(p.cfg.SessionKey, raw, page, email, out)
}

// openFlash opens a flash cookie's value (whatever a browser, or a
// stranger, sends) for page and account into out.
func openFlash(key []byte, raw, page, email string, out any) error {
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	aead := flashAEAD(key)
	if err != nil || len(sealed) < aead.NonceSize() {
		return errNoFlash
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(flashCookie))
	var f flash
	if err != nil || json.Unmarshal(plain, &f) != nil || f.Page != page || f.Email != email {
		return errNoFlash
	}
	return json.Unmarshal(f.Data, out)
}
