package clustertest

import (
	"encoding/json"
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

// The Vagrantfile validates, and its provisioning script, run into a
// directory for two nodes of a region, installs the binary, the unit (which
// systemd-analyze accepts) and a configuration serve accepts, with one
// region CA shared by the nodes, the first bootstrapping and the second
// joining it.
func TestVagrantProvisioning(t *testing.T) {
	if vagrant, err := exec.LookPath("vagrant"); err == nil {
		// --ignore-provider: a machine with no VirtualBox or libvirt (CI
		// installs vagrant without them) still checks the Vagrantfile.
		cmd := exec.Command(vagrant, "validate", "--ignore-provider")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vagrant validate: %v\n%s", err, out)
		}
	} else {
		t.Log("vagrant not found: the Vagrantfile is not validated here")
	}
	secrets := t.TempDir()
	roots := map[string]string{}
	for _, node := range []struct{ id, ip string }{{"a1", "192.168.56.11"}, {"a2", "192.168.56.12"}} {
		root := t.TempDir()
		roots[node.id] = root
		cmd := exec.Command("../deploy/vagrant/provision.sh", "a", node.id, node.ip, "192.168.56.11", "192.168.56.11")
		cmd.Env = append(os.Environ(), "ROOT="+root, "SRC=..", "BIN="+binary, "SECRETS="+secrets, "SYSTEMCTL=true")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("provision %s: %v\n%s", node.id, err, out)
		}
		for _, f := range []string{"usr/local/bin/covid-node", "etc/systemd/system/covid-node.service", "etc/covid-backend/node.json",
			"etc/covid-backend/ca.pem", "etc/covid-backend/" + node.id + ".key", "etc/covid-backend/pool.key"} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Fatalf("%s: %s not installed: %v", node.id, f, err)
			}
		}
		if info, _ := os.Stat(filepath.Join(root, "etc/covid-backend", node.id+".key")); info.Mode().Perm() != 0o600 {
			t.Fatalf("%s's key has mode %v", node.id, info.Mode().Perm())
		}
		conf, _ := os.ReadFile(filepath.Join(root, "etc/covid-backend/node.json"))
		if want := map[string]string{"a1": `"bootstrap": "true"`, "a2": `"join": "192.168.56.11:7000"`}[node.id]; !strings.Contains(string(conf), want) {
			t.Fatalf("%s's configuration lacks %s:\n%s", node.id, want, conf)
		}
	}
	ca1, _ := os.ReadFile(filepath.Join(roots["a1"], "etc/covid-backend/ca.pem"))
	ca2, _ := os.ReadFile(filepath.Join(roots["a2"], "etc/covid-backend/ca.pem"))
	if len(ca1) == 0 || string(ca1) != string(ca2) {
		t.Fatal("the two nodes of a region got different CAs")
	}
	// Every setting the script writes is an option of serve.
	conf, _ := os.ReadFile(filepath.Join(roots["a2"], "etc/covid-backend/node.json"))
	var settings map[string]string
	if err := json.Unmarshal(conf, &settings); err != nil {
		t.Fatalf("the provisioned configuration is not JSON: %v\n%s", err, conf)
	}
	help, _ := exec.Command(binary, "serve", "-h").CombinedOutput()
	for name := range settings {
		if !strings.Contains(string(help), "-"+name+" ") && !strings.Contains(string(help), "-"+name+"\n") {
			t.Errorf("the script writes %q, which serve does not know", name)
		}
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		unit, _ := os.ReadFile(filepath.Join(roots["a1"], "etc/systemd/system/covid-node.service"))
		p := filepath.Join(t.TempDir(), "covid-node.service")
		writeFile(t, p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/covid-node", binary)))
		if out, err := exec.Command(analyze, "verify", p).CombinedOutput(); err != nil {
			t.Fatalf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
		}
	}
}
