package clustertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped systemd unit passes systemd-analyze verify (with its
// ExecStart pointed at the binary under test), and keeps its sandbox.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: the unit is not verified here")
	}
	unit, err := os.ReadFile("../deploy/systemd/covid-node.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"NoNewPrivileges=true", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "ReadWritePaths=/var/lib/covid-backend",
		"LimitNOFILE=", "KillSignal=SIGTERM", "RestartPreventExitStatus=3", "User=covid-node"} {
		if !strings.Contains(string(unit), must) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(must))
		}
	}
	path := filepath.Join(t.TempDir(), "covid-node.service")
	writeFile(t, path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/covid-node", binary)))
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
