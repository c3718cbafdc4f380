package portal

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/verify"
)

// newKeyShown is how long the page shows an API key just made (in the
// flash cookie; the region keeps only its hash).
const newKeyShown = 5 * time.Minute

// providerKinds are the API key kinds a provider's manager makes: keys
// of its lab systems, and keys that read its statistics.
var providerKinds = []string{fsm.APIKeyAdmin, fsm.APIKeyStats}

// apiKeys lists the provider's API keys, and the key just made.
func (p *Portal) apiKeys(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	var keys []*fsmpb.ApiKey
	for _, k := range p.region.FSM().APIKeys() {
		if k.GetProvider() == u.GetProvider() && slices.Contains(providerKinds, k.GetKind()) {
			keys = append(keys, k)
		}
	}
	var fresh string
	notice := notices[c.Query("notice")]
	if p.readFlash(c, "apikey", u.GetEmail(), &fresh) == nil {
		notice = msg("Copy the key now: it is shown for a few minutes only and kept nowhere.")
	}
	p.render(c, http.StatusOK, "apikeys.html", page{Title: msg("API keys"), Notice: notice, Data: struct {
		Keys []*fsmpb.ApiKey
		New  string
	}{keys, fresh}})
}

// addAPIKey makes an admin or stats key of the manager's provider, then
// redirects to the list, which shows it (POST-redirect-GET: a reload
// makes no second key).
func (p *Portal) addAPIKey(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	name, kind := strings.TrimSpace(c.PostForm("name")), c.DefaultPostForm("kind", fsm.APIKeyAdmin)
	if u.GetProvider() == "" { // a region-wide key is the operators' (apikeys add)
		p.render(c, http.StatusForbidden, "message.html", page{Title: msg("Not allowed"), Error: msg("Your account may not do this.")})
		return
	}
	if !slices.Contains(providerKinds, kind) {
		p.render(c, http.StatusBadRequest, "message.html", page{Title: msg("API keys"), Error: msg("Choose what the key is for: a lab system or statistics.")})
		return
	}
	key, hash := verify.NewAPIKey()
	err := command.PutAPIKey(c.Request.Context(), p.region, &fsmpb.ApiKey{Hash: hash[:], Name: name, Kind: kind, Provider: u.GetProvider()})
	if err != nil {
		p.writeFailed(c, msg("API keys"), err)
		return
	}
	p.audit(c, "create "+kind+" api key", name)
	if err := p.setFlash(c, "apikey", u.GetEmail(), key, newKeyShown); err != nil {
		p.render(c, http.StatusInternalServerError, "message.html", page{Title: msg("API keys"), Error: msg("The key was made but cannot be shown; revoke it and make another.")})
		return
	}
	p.redirectAfterWrite(c, "/portal/apikeys")
}

// revokeAPIKey stops a key for good, after a page that asks: a manager's
// own provider's keys, an operator's any key of the region.
func (p *Portal) revokeAPIKey(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	name, back := c.PostForm("name"), "/portal/apikeys"
	if has(u, "operator") {
		back = "/portal/region"
	}
	keys := p.region.FSM().APIKeys()
	i := slices.IndexFunc(keys, func(k *fsmpb.ApiKey) bool {
		return k.GetName() == name && (has(u, "operator") || u.GetProvider() != "" && k.GetProvider() == u.GetProvider() && slices.Contains(providerKinds, k.GetKind()))
	})
	if i < 0 {
		p.render(c, http.StatusNotFound, "message.html", page{Title: msg("Not found"), Error: msg("There is no API key of that name that you may revoke.")})
		return
	}
	k := keys[i]
	if !p.confirmed(c, confirmation{Question: p.tr(c, "Revoke the %s API key %s? Every system that sends it is refused from now on, and it cannot be undone: make a new key for them.", k.GetKind(), name),
		Action: c.Request.URL.Path, Button: msg("Revoke the key"), Back: back, Fields: []field{{"name", name}}}) {
		return
	}
	if err := command.RevokeAPIKey(c.Request.Context(), p.region, k.GetHash()); err != nil {
		p.writeFailed(c, msg("API keys"), err)
		return
	}
	p.audit(c, "revoke api key", name)
	p.redirectAfterWrite(c, back+"?notice=key-revoked")
}

// revokeProvider stops a provider for good, after a page that asks: its
// token, its API keys and its accounts' issuing no longer work, and its
// codes already issued still admit their uploads.
func (p *Portal) revokeProvider(c *gin.Context) {
	id := c.PostForm("provider")
	if _, ok := p.region.FSM().Provider(id); !ok {
		p.render(c, http.StatusNotFound, "message.html", page{Title: msg("Not found"), Error: msg("There is no provider of that name.")})
		return
	}
	if !p.confirmed(c, confirmation{Question: p.tr(c, "Revoke the provider %s? It issues no code from now on, through its token, its API keys or the portal, and it cannot be undone: register it again under a new id.", id),
		Action: "/portal/region/providers/revoke", Button: msg("Revoke the provider"), Back: "/portal/region", Fields: []field{{"provider", id}}}) {
		return
	}
	if err := command.RevokeProvider(c.Request.Context(), p.region, id); err != nil {
		p.writeFailed(c, msg("Providers"), err)
		return
	}
	p.audit(c, "revoke provider", id)
	p.redirectAfterWrite(c, "/portal/region?notice=provider-revoked")
}

// writeFailed answers a write the region refused (400, its reason in
// plain words) or could not take now (503, try again).
func (p *Portal) writeFailed(c *gin.Context, title string, err error) {
	var refused *command.Error
	if errors.As(err, &refused) {
		p.render(c, http.StatusBadRequest, "message.html", page{Title: title, Error: refused.Message})
		return
	}
	p.render(c, http.StatusServiceUnavailable, "message.html", page{Title: msg("Try again"), Error: msg("The region is not ready; try again in a moment.")})
}
