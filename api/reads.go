package api

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "up"}) }

func (s *Server) readyz(c *gin.Context) {
	if !s.node.Ready() {
		fail(c, http.StatusServiceUnavailable, "not_ready", "no leader known or still catching up")
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// status is the public status: no counts, indexes or raft addresses.
func (s *Server) status(c *gin.Context) { c.JSON(http.StatusOK, s.node.PublicStatus()) }

// adminStatus is the operators' full status view.
func (s *Server) adminStatus(c *gin.Context) {
	st, err := s.node.Status()
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// publicRead serves a public read from the local state. Consistent reads
// (a raft barrier, a log entry per read) and the applied index are for
// operators: a stranger could otherwise fill the log, or watch the index
// count uploads.
func (s *Server) publicRead(c *gin.Context) {
	if c.Query("consistent") != "" {
		fail(c, http.StatusForbidden, "forbidden", "consistent reads are for operators: use the admin API")
		return
	}
	c.Next()
}

// readView serves a read from the local state, stamped with the applied
// index it reflects. With ?consistent=true it is linearizable: the node
// answers once it holds every write acknowledged before the request (the
// leader's read index, confirmed by a barrier; node.ConsistentRead).
func (s *Server) readView(c *gin.Context) {
	if c.Query("consistent") == "true" {
		if err := s.node.ConsistentRead(c.Request.Context()); err != nil {
			fail(c, http.StatusServiceUnavailable, "no_leader", "consistent read: "+err.Error())
			return
		}
	}
	c.Header("X-Applied-Index", strconv.FormatUint(s.node.AppliedIndex(), 10))
	c.Next()
}

// storedKey is a key as the admin API shows it, with where it stands.
type storedKey struct {
	Key              string `json:"key"`
	RollingStart     int32  `json:"rollingStartNumber"`
	RollingPeriod    int32  `json:"rollingPeriod"`
	TransmissionRisk int32  `json:"transmissionRisk"`
	ReportType       int32  `json:"reportType"`
	DaysSinceOnset   *int32 `json:"daysSinceOnsetOfSymptoms,omitempty"`
	Submission       uint32 `json:"submission"`
	Batch            uint32 `json:"batch"`
	Revoked          bool   `json:"revoked,omitempty"`
	Revised          bool   `json:"revised,omitempty"`
}

// keys lists every stored key, sealed or still waiting (admin only: keys
// that are still valid must not reach apps before they expire).
func (s *Server) keys(c *gin.Context) {
	keys := s.node.FSM().Keys(nil)
	out := make([]storedKey, len(keys))
	for i, k := range keys {
		out[i] = storedKey{
			Key: base64.StdEncoding.EncodeToString(k.Data[:]), RollingStart: k.RollingStart, RollingPeriod: k.RollingPeriod,
			TransmissionRisk: k.TransmissionRisk, ReportType: k.ReportType, Submission: k.Submission, Batch: k.Batch,
			Revoked: k.Revoked, Revised: k.Revised,
		}
		if k.HasDaysSinceOnset {
			out[i].DaysSinceOnset = &keys[i].DaysSinceOnset
		}
	}
	c.JSON(http.StatusOK, gin.H{"keys": out})
}
