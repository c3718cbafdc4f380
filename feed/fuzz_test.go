package feed

import "testing"

// Any path an app asks for either names a file in canonical form (which
// prints back to the same path) or is refused.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"100-200-00001.zip", "day/1728000001-1728003600-00002.zip", "day/x", "../1-2-00001.zip", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		spec, err := parseName(rel)
		if err != nil {
			return
		}
		if spec.rel() != rel || spec.end < spec.start || spec.part < 1 {
			t.Fatalf("%q parsed as %+v, which names %q", rel, spec, spec.rel())
		}
	})
}
