package portal

import "testing"

// A bulk line's id is its provider's, its file's and its line number's:
// the same file sent again gives the same ids, and two lines alike, two
// files or two providers never share one.
func TestBulkUUID(t *testing.T) {
	file := []byte("testType\nlikely\nlikely\n")
	first := bulkUUID("lab", file, 2)
	for name, tc := range map[string]struct {
		id   string
		same bool
	}{
		"the same file again":           {bulkUUID("lab", append([]byte(nil), file...), 2), true},
		"the next line, of equal text":  {bulkUUID("lab", file, 3), false},
		"another provider's equal file": {bulkUUID("clinic", file, 2), false},
		"another file of the provider":  {bulkUUID("lab", []byte("testType\nlikely\n"), 2), false},
	} {
		if (tc.id == first) != tc.same {
			t.Errorf("%s: %s against %s, want same %v", name, tc.id, first, tc.same)
		}
	}
}
