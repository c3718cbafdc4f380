package fsm_test

import (
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func revokeCert(sum []byte, reason string) *fsmpb.Command {
	return &fsmpb.Command{Version: 5, Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_CERT, TimeUnix: vt0,
		RevokeCert: &fsmpb.RevokedCert{CertSha256: sum, NodeId: "n2", Reason: reason}}
}

// A member certificate is revoked by its SHA-256 with a reason; revoking
// it again changes nothing; a bad one is refused and changes nothing.
func TestRevokeCert(t *testing.T) {
	f := fsm.New()
	sum := hashOf("n2's leaked renewal")
	for name, tc := range map[string]*fsmpb.Command{
		"a short digest":    revokeCert(sum[:20], "leaked"),
		"no reason":         revokeCert(sum, ""),
		"a reason too long": revokeCert(sum, strings.Repeat("x", command.MaxReason+1)),
	} {
		if code := codeOf(applyCmd(t, f, tc).Err); code != command.CodeInvalidCommand {
			t.Errorf("%s: %q", name, code)
		}
	}
	if len(f.RevokedCerts()) != 0 {
		t.Fatal("a refused revocation revoked")
	}
	mustApply(t, f, revokeCert(sum, "leaked"))
	before := freeze(t, f)
	mustApply(t, f, revokeCert(sum, "leaked, again"))
	assertUnchanged(t, f, before)
	if !f.CertRevoked([32]byte(sum)) || f.CertRevoked([32]byte(hashOf("another"))) {
		t.Fatal("CertRevoked")
	}
	if got := f.RevokedCerts(); len(got) != 1 || got[0].GetReason() != "leaked" || got[0].GetTimeUnix() != vt0 || got[0].GetNodeId() != "n2" {
		t.Fatalf("revoked %v", got)
	}
}
