package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/backup"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/node"
)

// maxRestoreBytes bounds a backup sent to /v1/admin/restore (an operator's;
// a million keys take about 50 MB).
const maxRestoreBytes = 4 << 30

// backupState is GET /v1/admin/backup?recipient=age1…: a consistent copy
// of the region's state, taken on the leader while writes go on, in the
// backup format, encrypted to the named age recipients (comma-separated):
// it never leaves the node in clear. A follower answers 409 with the
// leader's address.
func (s *Server) backupState(c *gin.Context) {
	recipients, err := backup.ParseRecipients(c.Query("recipient"))
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	meta, rc, err := s.node.BackupSnapshot(c.Request.Context())
	if errors.Is(err, node.ErrNotLeaderForBackup) {
		s.notLeader(c, err)
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	defer rc.Close()
	h := backup.Header{Region: s.node.Config().Region, CreatedUnix: s.cfg.Now().Unix(), RaftIndex: meta.Index, RaftTerm: meta.Term,
		SnapshotVersion: fsm.SnapshotVersion, CommandVersion: command.Version, Size: meta.Size}
	for _, k := range s.cfg.Feed.SigningKeys {
		h.ExportKeys = append(h.ExportKeys, k.KeyID+"/"+k.KeyVersion)
	}
	if s.cfg.FederationKey != nil {
		h.FederationKeyID = s.cfg.FederationKey.ID
	}
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", `attachment; filename="`+h.Region+`-`+time.Unix(h.CreatedUnix, 0).UTC().Format("20060102T150405Z")+`.backup.age"`)
	c.Status(http.StatusOK)
	w, err := backup.Seal(c.Writer, recipients)
	if err == nil {
		err = errors.Join(backup.Write(w, h, rc, s.backupKeys()[0]), w.Close())
	}
	if err != nil {
		s.cfg.Logger.Error("backup cut off", "err", err) // the trailer is missing: restore refuses it
	}
}

// backupKeys are the keys of backup trailers: the first signs, every one
// opens (code key rotation).
func (s *Server) backupKeys() [][]byte {
	keys := make([][]byte, len(s.codeKeys))
	for i, k := range s.codeKeys {
		keys[i] = backup.Key(k)
	}
	return keys
}

// notLeader answers 409 and names the leader's API address.
func (s *Server) notLeader(c *gin.Context, err error) {
	leader := ""
	if st, serr := s.node.Status(); serr == nil {
		for _, m := range st.Members {
			if m.ID == st.LeaderID {
				leader = m.HTTPAddr
			}
		}
	}
	c.AbortWithStatusJSON(http.StatusConflict, gin.H{"error": err.Error(), "code": "not_leader", "leader_http": leader})
}

// restoreState is POST /v1/admin/restore: seeds this (new) region with the
// state of a backup of the same region, as decrypted by the operator
// (covid-node restore --identity); ?force=true replaces a region's state
// that is not new. The file is checked whole (the trailer under the
// region's key, region, formats, every record) before anything changes.
func (s *Server) restoreState(c *gin.Context) {
	h, f, err := backup.Open(http.MaxBytesReader(c.Writer, c.Request.Body, maxRestoreBytes), s.node.Config().DataDir, s.backupKeys())
	if err != nil {
		fail(c, http.StatusBadRequest, "bad_backup", err.Error())
		return
	}
	defer backup.Discard(f)
	switch {
	case h.Region != s.node.Config().Region:
		fail(c, http.StatusBadRequest, "other_region", "a backup of region "+h.Region+" cannot seed region "+s.node.Config().Region)
		return
	case h.SnapshotVersion > fsm.SnapshotVersion || h.CommandVersion > command.Version:
		fail(c, http.StatusBadRequest, "newer_format", "the backup was made by a newer build; upgrade this one first")
		return
	}
	if err := fsm.New().Restore(io.NopCloser(f)); err != nil {
		fail(c, http.StatusBadRequest, "bad_backup", err.Error())
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		failErr(c, err)
		return
	}
	err = s.node.RestoreState(c.Request.Context(), f, h.Size, c.Query("force") == "true")
	switch {
	case errors.Is(err, node.ErrNotLeaderForBackup):
		s.notLeader(c, err)
	case errors.Is(err, node.ErrNotFresh):
		fail(c, http.StatusConflict, "not_fresh", err.Error())
	case err != nil:
		failErr(c, err)
	default:
		c.JSON(http.StatusOK, gin.H{"restored": h.Region, "raft_index": h.RaftIndex, "created_unix": h.CreatedUnix, "bytes": h.Size})
	}
}
