package api

import (
	"encoding/hex"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// CertRevocation revokes a member certificate by its SHA-256 (hex), with
// the node it names and why.
type CertRevocation struct {
	CertSHA256 string `json:"cert_sha256"`
	NodeID     string `json:"node_id,omitempty"`
	Reason     string `json:"reason"`
}

// RevokedCertView is a revoked member certificate as operators see it.
type RevokedCertView struct {
	CertRevocation
	Time time.Time `json:"time"`
}

// revokeCert is POST /v1/admin/certs/revoked: from the next handshake no
// node takes the certificate, and raft connections made with it are
// closed within a second.
func (s *Server) revokeCert(c *gin.Context) {
	var req CertRevocation
	if !bindStrict(c, &req) {
		return
	}
	sum, err := hex.DecodeString(req.CertSHA256)
	if err != nil || len(sum) != 32 {
		fail(c, http.StatusBadRequest, "bad_request", "cert_sha256: want the certificate's SHA-256 as 64 hex digits (covid-node certs revoke --cert FILE computes it)")
		return
	}
	if err := command.RevokeCert(c.Request.Context(), s.node, &fsmpb.RevokedCert{CertSha256: sum, NodeId: req.NodeID, Reason: req.Reason}); err != nil {
		failErr(c, err)
		return
	}
	command.Audit(c.Request.Context(), s.node, &fsmpb.AuditEvent{Actor: "admin-api", Action: "revoke member certificate", Target: req.NodeID + " " + req.CertSHA256})
	c.Set(ctxAudited, true)
	c.JSON(http.StatusOK, gin.H{"revoked": req.CertSHA256})
}

func (s *Server) listRevokedCerts(c *gin.Context) {
	out := []RevokedCertView{}
	for _, rc := range s.node.FSM().RevokedCerts() {
		out = append(out, RevokedCertView{CertRevocation: CertRevocation{CertSHA256: hex.EncodeToString(rc.GetCertSha256()),
			NodeID: rc.GetNodeId(), Reason: rc.GetReason()}, Time: time.Unix(rc.GetTimeUnix(), 0).UTC()})
	}
	c.JSON(http.StatusOK, gin.H{"revoked_certs": out})
}
