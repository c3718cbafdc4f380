package portal

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/verify"
)

var (
	templateKey = regexp.MustCompile(`\$\.TH? "((?:[^"\\]|\\.)*)"`)
	goKey       = regexp.MustCompile(`(?:\bmsg|\.T|\.tr)\((?:c,\s*)?"((?:[^"\\]|\\.)*)"`)
	verb        = regexp.MustCompile(`%[a-z]`)
)

// usedKeys are the texts the portal shows: those its templates and Go code
// name, and the values its pages translate (test types, roles).
func usedKeys(t *testing.T) []string {
	t.Helper()
	keys := append(slices.Clone(verify.TestTypes), providerRoles...)
	keys = append(keys, "operator")
	read := func(pattern *regexp.Regexp, files []string) {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range pattern.FindAllStringSubmatch(string(b), -1) {
				keys = append(keys, strings.ReplaceAll(m[1], `\"`, `"`))
			}
		}
	}
	templates, _ := fs.Glob(templateFiles, "templates/*.html")
	read(templateKey, templates)
	sources, _ := filepath.Glob("*.go")
	read(goKey, slices.DeleteFunc(sources, func(f string) bool { return strings.HasSuffix(f, "_test.go") }))
	slices.Sort(keys)
	return slices.Compact(keys)
}

// Every text the portal shows has its Dutch, no Dutch text is left over
// from a text that is gone, and each says the same numbers and names (the
// same format verbs, in order).
func TestEveryTextTranslated(t *testing.T) {
	tr, err := loadTranslations()
	if err != nil {
		t.Fatal(err)
	}
	used := usedKeys(t)
	if len(used) < 200 {
		t.Fatalf("only %d texts found: the scan misses the portal's texts", len(used))
	}
	for _, k := range used {
		nl, ok := tr.dutch[k]
		switch {
		case !ok:
			t.Errorf("no Dutch for %q", k)
		case strings.Join(verb.FindAllString(k, -1), "") != strings.Join(verb.FindAllString(nl, -1), ""):
			t.Errorf("%q and its Dutch %q differ in their verbs", k, nl)
		case strings.Count(k, "<") != strings.Count(nl, "<"):
			t.Errorf("%q and its Dutch %q differ in their markup", k, nl)
		}
	}
	for k := range tr.dutch {
		if !slices.Contains(used, k) {
			t.Errorf("Dutch for %q, which the portal no longer shows", k)
		}
	}
	b, _ := localeFiles.ReadFile("locales/nl.json")
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != len(tr.dutch) {
		t.Fatalf("locales/nl.json: %v", err)
	}
}
