package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/verify"
)

// APIKeyRequest creates a key of the verification service: a device key
// (kind "device", for the region's apps) or an admin key of a provider
// (kind "admin", for its lab or hospital systems).
type APIKeyRequest struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Provider string `json:"provider,omitempty"`
}

// APIKeyView is an API key as operators see it: never the key itself.
type APIKeyView struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Provider string    `json:"provider,omitempty"`
	Revoked  bool      `json:"revoked"`
	Created  time.Time `json:"created"`
}

// putAPIKey makes a new random key, registers its hash and answers the
// key, once.
func (s *Server) putAPIKey(c *gin.Context) {
	var req APIKeyRequest
	if !bindStrict(c, &req) {
		return
	}
	key, hash := verify.NewAPIKey()
	err := command.PutAPIKey(c.Request.Context(), s.node, &fsmpb.ApiKey{Hash: hash[:], Name: req.Name, Kind: req.Kind, Provider: req.Provider})
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"name": req.Name, "kind": req.Kind, "provider": req.Provider, "key": key})
}

func (s *Server) listAPIKeys(c *gin.Context) {
	out := []APIKeyView{}
	for _, k := range s.node.FSM().APIKeys() {
		out = append(out, APIKeyView{Name: k.GetName(), Kind: k.GetKind(), Provider: k.GetProvider(), Revoked: k.GetRevoked(),
			Created: time.Unix(k.GetCreatedUnix(), 0).UTC()})
	}
	c.JSON(http.StatusOK, gin.H{"api_keys": out})
}

// revokeAPIKey stops the key with the given name.
func (s *Server) revokeAPIKey(c *gin.Context) {
	for _, k := range s.node.FSM().APIKeys() {
		if k.GetName() == c.Param("name") {
			if err := command.RevokeAPIKey(c.Request.Context(), s.node, k.GetHash()); err != nil {
				failErr(c, err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"revoked": k.GetName()})
			return
		}
	}
	fail(c, http.StatusNotFound, string(command.CodeUnknownAPIKey), "no API key with this name")
}
