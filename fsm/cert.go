package fsm

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// maxRevokedCerts bounds the revoked member certificates a region keeps:
// certificates of a region CA are few (a member's, its renewals), and a
// region that needs more rotates its CA.
const maxRevokedCerts = 10_000

// applyRevokeCert adds a member certificate to the revoked ones (from
// version 5). Revoking one that is revoked changes nothing.
func applyRevokeCert(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	rc := proto.CloneOf(cmd.GetRevokeCert())
	switch {
	case len(rc.GetCertSha256()) != 32:
		return refuse(command.CodeInvalidCommand, "a revoked certificate is named by its 32-byte SHA-256")
	case rc.GetReason() == "" || utf8.RuneCountInString(rc.GetReason()) > command.MaxReason:
		return refuse(command.CodeInvalidCommand, "a revocation needs a reason of at most %d characters", command.MaxReason)
	case s.revokedCerts[[32]byte(rc.GetCertSha256())] != nil:
		return &fsmpb.Result{}
	case len(s.revokedCerts) >= maxRevokedCerts:
		return refuse(command.CodeInvalidCommand, "the region keeps at most %d revoked certificates: rotate its CA", maxRevokedCerts)
	}
	rc.TimeUnix = cmd.GetTimeUnix()
	s.revokedCerts[[32]byte(rc.GetCertSha256())] = rc
	return &fsmpb.Result{}
}

// CertRevoked tells whether the member certificate with this SHA-256 is
// revoked.
func (f *FSM) CertRevoked(sha256 [32]byte) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.revokedCerts[sha256] != nil
}

// RevokedCerts returns copies of the revoked member certificates, by
// SHA-256.
func (f *FSM) RevokedCerts() []*fsmpb.RevokedCert {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedRevokedCerts(f.state.revokedCerts)
}

func sortedRevokedCerts(m map[[32]byte]*fsmpb.RevokedCert) []*fsmpb.RevokedCert {
	out := make([]*fsmpb.RevokedCert, 0, len(m))
	for _, rc := range m {
		out = append(out, proto.CloneOf(rc))
	}
	slices.SortFunc(out, func(a, b *fsmpb.RevokedCert) int { return slices.Compare(a.GetCertSha256(), b.GetCertSha256()) })
	return out
}

func captureRevokedCerts(s *state, hdr *fsmpb.SnapshotHeader) persist {
	list := sortedRevokedCerts(s.revokedCerts)
	hdr.RevokedCerts = uint64(len(list))
	return func(put func(proto.Message) error) error { return putAll(put, list) }
}

func restoreRevokedCerts(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	for range hdr.GetRevokedCerts() {
		rc := &fsmpb.RevokedCert{}
		if err := r.get(rc); err != nil {
			return fmt.Errorf("read revoked certificate: %w", err)
		}
		if len(rc.GetCertSha256()) != 32 {
			return fmt.Errorf("revoked certificate with a SHA-256 of %d bytes", len(rc.GetCertSha256()))
		}
		s.revokedCerts[[32]byte(rc.GetCertSha256())] = rc
	}
	return nil
}
