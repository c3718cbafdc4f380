package main

import (
	"encoding/json"
	"flag"
	"os"
	"slices"
	"testing"
)

const exampleConfig = "../../deploy/systemd/node.json"

// The example configuration names every serve option with its default
// (the node id, region and data dir filled in) and is accepted by serve.
// COVID_WRITE_EXAMPLE=1 writes it anew from the flags.
func TestExampleConfigHasEveryOption(t *testing.T) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.flags(fs)
	want := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			want[f.Name] = f.DefValue
		}
	})
	for k, v := range map[string]string{
		"node-id": "n1", "region": "region-1", "data-dir": "/var/lib/covid-backend",
		"http-addr": "10.0.0.1:8080", "raft-addr": "10.0.0.1:7000", "join": "10.0.0.2:7000,10.0.0.3:7000",
		"admin-token-file": "/etc/covid-backend/admin-token", "tls-ca-file": "/etc/covid-backend/ca.pem",
		"tls-cert-file": "/etc/covid-backend/n1.pem", "tls-key-file": "/etc/covid-backend/n1.key",
		"code-key-file": "/etc/covid-backend/code.key", "revision-key-file": "/etc/covid-backend/revision.key",
		"export-key-file": "/etc/covid-backend/export-key.pem", "export-key-id": "310", "export-key-version": "v1",
	} {
		want[k] = v
	}
	if os.Getenv("COVID_WRITE_EXAMPLE") != "" {
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(exampleConfig, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var have map[string]string
	if err := json.Unmarshal(b, &have); err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for k := range want {
		if _, ok := have[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("%s: missing %v, unknown %v (COVID_WRITE_EXAMPLE=1 writes it anew)", exampleConfig, missing, extra)
	}
	if _, err := parseServe([]string{"--config", exampleConfig}); err != nil {
		t.Fatalf("serve does not accept the example: %v", err)
	}
}
