package api

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
)

// The shipped alert rules pass promtool (Debian's prometheus package), and
// every metric they and the dashboard name is one a node exports.
func TestMonitoringNamesExist(t *testing.T) {
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "rules", "../deploy/monitoring/alerts.yml").CombinedOutput(); err != nil {
			t.Fatalf("promtool check rules: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not found: the rules are checked by parsing only")
	}
	ts := newTestServer(t, nil)
	descs := make(chan *prometheus.Desc, 1000)
	go func() { ts.srv.metrics.registry.Describe(descs); close(descs) }()
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	var have []string
	for d := range descs {
		if m := name.FindStringSubmatch(d.String()); m != nil {
			have = append(have, m[1])
		}
	}
	rules, err := os.ReadFile("../deploy/monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For string
				Labels           map[string]string
				Annotations      map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(rules, &file); err != nil || len(file.Groups) == 0 {
		t.Fatalf("alerts.yml: %v", err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks an alert name, expression, severity or summary", r)
			}
		}
	}
	dashboard, err := os.ReadFile("../deploy/monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dashboard, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	exprs := string(rules)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs += "\n" + tg.Expr
		}
	}
	used := regexp.MustCompile(`covid_[a-z_]+`).FindAllString(exprs, -1)
	if len(used) < 20 {
		t.Fatalf("only %d metric names in the rules and dashboard", len(used))
	}
	for _, n := range used {
		base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(n, "")
		if !slices.Contains(have, n) && !slices.Contains(have, base) {
			t.Errorf("%s is named by the monitoring files but no node exports it", n)
		}
	}
}
