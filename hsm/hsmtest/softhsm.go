// Package hsmtest makes SoftHSM2 tokens for tests of the packages and
// processes that sign through PKCS#11 (.ci/run installs Debian's
// softhsm2).
package hsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/covid-backend/covid-backend/hsm"
)

// Module is Debian's SoftHSM2 PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSM makes a token labelled "covid" in a directory of the test's own,
// points SOFTHSM2_CONF at it for the test (and the processes it starts),
// and returns how to open it.
func SoftHSM(tb testing.TB) hsm.Config {
	tb.Helper()
	if _, err := os.Stat(Module); err != nil {
		tb.Fatalf("SoftHSM2 is not installed (.ci/run installs softhsm2): %v", err)
	}
	dir := tb.TempDir()
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "covid", "--pin", "1234", "--so-pin", "5678").CombinedOutput(); err != nil {
		tb.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	pin := filepath.Join(dir, "pin")
	if err := os.WriteFile(pin, []byte("1234\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return hsm.Config{Module: Module, Token: "covid", PinFile: pin}
}
