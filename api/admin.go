package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
)

const maxAdminBody = 1 << 20

// requireToken admits requests that carry the region's admin token. Wrong
// tokens count against the client (tokenFailures): past its allowance it
// is answered 429 before its token is compared, so that guessing is
// bounded per address.
func (s *Server) requireToken(c *gin.Context) {
	ip := c.ClientIP()
	if s.tokenFailures.exhausted(ip) {
		c.Header("Retry-After", "600")
		fail(c, http.StatusTooManyRequests, "too_many_requests", "too many wrong admin tokens from this address; try later")
		return
	}
	if msg := s.tokenRefusal(c); msg != "" {
		s.tokenFailures.reserve(ip)
		fail(c, http.StatusUnauthorized, "unauthorized", msg)
		return
	}
	c.Next()
}

// tokenRefusal says why a request does not carry the region's admin token
// ("" when it does).
func (s *Server) tokenRefusal(c *gin.Context) string {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || got == "" {
		return "admin token required: Authorization: Bearer <token>"
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.cfg.AdminToken))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return "wrong admin token"
	}
	return ""
}

// requireMemberPeer admits a member-port request only from a member: a
// server of the region's raft configuration by the node id its certificate
// names, with the certificate it recorded or a newer one (node.IsMember),
// or with another and the region's admin token (it records its own).
func (s *Server) requireMemberPeer(c *gin.Context) {
	peer := node.MemberPeer(c.Request.Context())
	if !s.node.IsMember(peer) && !(s.node.InConfiguration(peer.ID) && s.tokenRefusal(c) == "") {
		fail(c, http.StatusForbidden, "not_a_member", fmt.Sprintf("node %q with this certificate is not a member of this region: an operator adds it (join)", peer.ID))
		return
	}
	c.Next()
}

// requireLoopback admits only clients on this machine. With plaintext raft
// (--insecure-dev) every member runs on a loopback address and forwards
// over the API port with the admin token, so the member routes there take
// raw commands, which bypass the admin API's checks, from nowhere else, even
// with the token.
func requireLoopback(c *gin.Context) {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fail(c, http.StatusForbidden, "not_a_member", "with plaintext raft (--insecure-dev) the member routes answer only on this machine")
		return
	}
	c.Next()
}

// forwarder is who forwards writes: the member its certificate names (none
// with plaintext raft, where these routes need the admin token anyway),
// and whether it sent the admin token.
func (s *Server) forwarder(c *gin.Context) node.Forwarder {
	peer := node.MemberPeer(c.Request.Context())
	return node.Forwarder{Peer: peer.ID, Operator: s.tokenRefusal(c) == ""}
}

// ctxAudited marks an admin write whose handler recorded its own, fuller
// audit event.
const ctxAudited = "audited"

// auditAdmin records every admin write that took effect in the audit log
// (by the admin API: its method, route and path), unless its handler
// recorded a fuller event itself, so that what operators do from the
// command line is in the log beside what the portal records.
func (s *Server) auditAdmin(c *gin.Context) {
	c.Next()
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead:
		return
	}
	if c.Writer.Status() >= http.StatusBadRequest || c.GetBool(ctxAudited) {
		return
	}
	ev := &fsmpb.AuditEvent{Actor: "admin-api", Action: c.Request.Method + " " + c.FullPath(), Target: c.Request.URL.Path}
	if err := command.Audit(c.Request.Context(), s.node, ev); err != nil {
		s.cfg.Logger.Warn("an admin write without its audit event", "action", ev.GetAction(), "err", err)
	}
}

// bodyLimit bounds what a request may send.
func bodyLimit(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

// bindStrict decodes a JSON body, refusing unknown fields and trailing data.
func bindStrict(c *gin.Context, out any) bool {
	if err := decodeStrict(c.Request.Body, out); err != nil {
		fail(c, http.StatusBadRequest, "bad_request", "request body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) listMembers(c *gin.Context) {
	members, err := s.node.Members()
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"members": members})
}

func (s *Server) addMember(c *gin.Context) {
	var req node.JoinRequest
	if !bindStrict(c, &req) {
		return
	}
	if req.Region == "" {
		req.Region = s.node.Config().Region
	}
	if err := s.node.Join(c.Request.Context(), req); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"added": req.ID, "dry_run": req.DryRun})
}

func (s *Server) removeMember(c *gin.Context) {
	id := c.Param("id")
	if err := s.node.Remove(c.Request.Context(), id); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"removed": id})
}

func (s *Server) transferLeadership(c *gin.Context) {
	var req struct {
		ID string `json:"id"`
	}
	if c.Request.ContentLength != 0 && !bindStrict(c, &req) {
		return
	}
	if err := s.node.TransferLeadership(c.Request.Context(), req.ID); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"transferred": true})
}

// promoteMember makes an edge node a voter.
func (s *Server) promoteMember(c *gin.Context) {
	var req struct {
		ID string `json:"id"`
	}
	if !bindStrict(c, &req) {
		return
	}
	if err := s.node.Promote(c.Request.Context(), req.ID); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"promoted": req.ID})
}

func (s *Server) snapshot(c *gin.Context) {
	if err := s.node.Snapshot(); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"snapshot": true, "applied_index": s.node.AppliedIndex()})
}

// seal seals the next batch now instead of at the next tick.
func (s *Server) seal(c *gin.Context) {
	res, err := s.node.SealNow(c.Request.Context())
	if errors.Is(err, node.ErrNothingToSeal) {
		fail(c, http.StatusConflict, "nothing_to_seal", "no accepted key has expired since the last batch")
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	protoJSON(c, http.StatusOK, res)
}

// expire applies retention now instead of at the next tick.
func (s *Server) expire(c *gin.Context) {
	res, err := s.node.ExpireNow(c.Request.Context())
	if err != nil {
		failErr(c, err)
		return
	}
	protoJSON(c, http.StatusOK, res)
}

// forwarded serves commands a follower forwarded, at most limit bytes:
// apply answers them in the follower's format (protobuf; JSON for builds
// before version 2).
func (s *Server) forwarded(contentType string, limit int64, apply func(context.Context, []byte) (int, []byte)) gin.HandlerFunc {
	return func(c *gin.Context) {
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
		if err != nil {
			fail(c, http.StatusBadRequest, "bad_request", "read command: "+err.Error())
			return
		}
		status, reply := apply(node.WithForwarder(c.Request.Context(), s.forwarder(c)), body)
		c.Data(status, contentType, reply)
	}
}
