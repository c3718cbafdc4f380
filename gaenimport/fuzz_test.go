package gaenimport_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/gaenimport"
)

// FuzzResolve: a name an index lists resolves under the export root, on
// its host, without a query, or is refused; never elsewhere.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"exposureKeyExport-US/1.zip", "../x.zip", "https://elsewhere/x", "/abs", "a?b", "a/./b", "%2e%2e/x", "a\\b"} {
		f.Add(s)
	}
	const root = "https://exports.example/root"
	f.Fuzz(func(t *testing.T, name string) {
		got, err := gaenimport.Resolve(root, name)
		if err != nil {
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "exports.example" || u.RawQuery != "" || !strings.HasPrefix(u.Path, "/root/") {
			t.Fatalf("%q resolved to %q", name, got)
		}
		for _, part := range strings.Split(u.Path, "/") {
			if part == ".." {
				t.Fatalf("%q resolved to %q, above the root", name, got)
			}
		}
	})
}
