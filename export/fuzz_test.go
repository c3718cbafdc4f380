package export

import (
	"os"
	"path/filepath"
	"testing"
)

// Any bytes given as an export file decode or fail cleanly, never panic.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("../testdata/gaen/*.zip")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err == nil && d == nil {
			t.Fatal("no error and no file")
		}
	})
}
