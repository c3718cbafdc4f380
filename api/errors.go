package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
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

// failErr answers an error from the node with the status it calls for:
// node.Retryable errors 503, refusals 400 or 404, anything else 500.
func failErr(c *gin.Context, err error) {
	var refused *command.Error
	var member *node.MembershipError
	switch {
	case node.Retryable(err):
		fail(c, http.StatusServiceUnavailable, retryCode(err), err.Error())
	case errors.As(err, &member):
		fail(c, member.Status, "refused", member.Message)
	case errors.As(err, &refused) && refused.Code == command.CodeServiceEnded:
		fail(c, http.StatusGone, string(refused.Code), refused.Message)
	case errors.As(err, &refused) && slices.Contains([]command.Code{command.CodeUnknownAuthority, command.CodeUnknownNode,
		command.CodeUnknownSubmission, command.CodeUnknownKey, command.CodeUnknownProvider, command.CodeUnknownRegion}, refused.Code):
		fail(c, http.StatusNotFound, string(refused.Code), refused.Message)
	case errors.As(err, &refused):
		fail(c, http.StatusBadRequest, string(refused.Code), refused.Message)
	default:
		fail(c, http.StatusInternalServerError, "internal_error", err.Error())
	}
}

// retryMessage is what the public API says of a node.Retryable error: the
// error itself may name the leader's member address, which strangers are
// not told; a full disk is said as it is.
func retryMessage(err error) string {
	var disk *node.DiskFullError
	if errors.As(err, &disk) {
		return "retry: " + disk.Error()
	}
	return "region not ready, retry"
}

// retryCode names why a node.Retryable error asks for a retry.
func retryCode(err error) string {
	var upgrade *command.ErrUpgradePending
	var disk *node.DiskFullError
	switch {
	case errors.As(err, &disk):
		return "disk_full"
	case errors.As(err, &upgrade):
		return "upgrade_pending"
	case errors.Is(err, node.ErrNoLeader):
		return "no_leader"
	}
	return "leader_refused"
}

// protoJSON answers a command result as JSON with the proto field names,
// zero values included (a seal of no padding says "padding": 0).
func protoJSON(c *gin.Context, status int, m proto.Message) {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	var out bytes.Buffer
	if err == nil {
		err = json.Compact(&out, b) // protojson varies its spacing on purpose
	}
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal_error", "encode result: "+err.Error())
		return
	}
	c.Data(status, "application/json; charset=utf-8", out.Bytes())
}

// notAdmitted is the answer of a node that joined moments ago and has not
// caught up with its region: a retry in a second, not "unauthorized".
const notAdmitted = "this node is catching up with its region; retry"

// admitted answers 503 on a node that has not caught up to its own
// admission (node.Admitted), before any key or credential is looked up.
func (s *Server) admitted(c *gin.Context) {
	if !s.node.Admitted() {
		fail(c, http.StatusServiceUnavailable, "not_ready", notAdmitted)
	}
}

// admittedPublish is admitted in the GAEN answer format. A node whose
// disk is full says so first: it takes no upload, and a follower that
// cannot store the log stays behind its region, which would otherwise
// answer "catching up" for as long as the disk stays full.
func (s *Server) admittedPublish(c *gin.Context) {
	if err := s.node.CheckDisk(); err != nil {
		s.publishFail(c, &publish.Error{Status: http.StatusServiceUnavailable, Code: publish.CodeInternalError, Message: retryMessage(err)})
		return
	}
	if !s.node.Admitted() {
		s.publishFail(c, &publish.Error{Status: http.StatusServiceUnavailable, Code: publish.CodeInternalError, Message: notAdmitted})
	}
}

// admittedVerify is admitted in the verification API's answer format.
func (s *Server) admittedVerify(c *gin.Context) {
	if !s.node.Admitted() {
		verifyFail(c, &verify.Error{Status: http.StatusServiceUnavailable, Code: verify.CodeUnavailable, Message: notAdmitted})
	}
}
