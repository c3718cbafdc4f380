package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/node"
)

// errorBody is the JSON body of every error answer outside /v1/publish
// (which answers in the GAEN format).
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func fail(c *gin.Context, status int, code, msg string) {
	if status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	c.AbortWithStatusJSON(status, errorBody{Error: msg, Code: code})
}

// failErr answers an error from the node with the status it calls for.
func failErr(c *gin.Context, err error) {
	var refused *fsm.Error
	var member *node.MembershipError
	switch {
	case errors.As(err, &member):
		fail(c, member.Status, "refused", member.Message)
	case errors.As(err, &refused) && slices.Contains([]fsm.Code{fsm.CodeUnknownAuthority, fsm.CodeUnknownNode,
		fsm.CodeUnknownSubmission, fsm.CodeUnknownKey, fsm.CodeUnknownProvider, fsm.CodeUnknownRegion}, refused.Code):
		fail(c, http.StatusNotFound, string(refused.Code), refused.Message)
	case errors.As(err, &refused):
		fail(c, http.StatusBadRequest, string(refused.Code), refused.Message)
	case errors.Is(err, node.ErrNoLeader):
		fail(c, http.StatusServiceUnavailable, "no_leader", err.Error())
	default:
		fail(c, http.StatusInternalServerError, "internal_error", err.Error())
	}
}
