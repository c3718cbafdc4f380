package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// firewall cuts links between node addresses with iptables rules on the
// loopback interface, in a chain of its own that it removes afterwards.
// Nodes dial from their own address, so a rule on (source, destination)
// cuts exactly one direction of one link.
type firewall struct {
	t     *testing.T
	chain string
}

func newFirewall(t *testing.T, subnet int) *firewall {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("partition scenarios need root for iptables (CI runs as root)")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("iptables not found (.ci/run installs it): %v", err)
	}
	f := &firewall{t: t, chain: fmt.Sprintf("COVIDTEST%d", subnet)}
	f.remove() // left by a run that was killed
	f.ipt("-N", f.chain)
	f.ipt("-I", "INPUT", "-i", "lo", "-j", f.chain)
	t.Cleanup(f.remove)
	return f
}

// remove takes the chain and its jump out, if they are there.
func (f *firewall) remove() {
	f.iptQuiet("-D", "INPUT", "-i", "lo", "-j", f.chain)
	f.iptQuiet("-F", f.chain)
	f.iptQuiet("-X", f.chain)
}

// isolate drops every packet between ip and each of the others, both ways.
func (f *firewall) isolate(ip string, others ...string) {
	for _, o := range others {
		f.ipt("-A", f.chain, "-s", ip, "-d", o, "-j", "DROP")
		f.ipt("-A", f.chain, "-s", o, "-d", ip, "-j", "DROP")
	}
	f.t.Logf("partitioned %s from %s", ip, strings.Join(others, ","))
}

// heal removes every rule.
func (f *firewall) heal() {
	f.ipt("-F", f.chain)
	f.t.Log("partition healed")
}

func (f *firewall) ipt(args ...string) {
	f.t.Helper()
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		f.t.Fatalf("iptables %v: %v: %s", args, err, out)
	}
}

func (f *firewall) iptQuiet(args ...string) {
	_ = exec.Command("iptables", args...).Run()
}
