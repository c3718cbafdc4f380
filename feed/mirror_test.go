package feed

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
)

// The mirror holds what the catalog serves, byte for byte: the two lists
// and every file they name; a file no list names is removed once it is an
// hour old.
func TestMirror(t *testing.T) {
	src := newFake()
	src.add(1, day0+10, day0+600, []fsm.Key{key(1)})
	c := NewCatalog(Config{Root: "v1/exports", Retention: 24 * time.Hour, SigningKeys: []export.SigningKey{signingKey(t)}}, src)
	dir := t.TempDir()
	m := &Mirror{Dir: dir, Catalog: c}
	now := time.Unix(day0+3600, 0)
	check := func() []string {
		t.Helper()
		var names []string
		for _, list := range []string{"index.txt", "batches.txt"} {
			rollups := list == "index.txt"
			got, err := os.ReadFile(filepath.Join(dir, "v1/exports", list))
			if err != nil || !bytes.Equal(got, c.IndexFile(now, rollups).Data) {
				t.Fatalf("%s in the mirror: %v", list, err)
			}
			names = append(names, strings.Fields(string(got))...)
		}
		for _, name := range names {
			got, err := os.ReadFile(filepath.Join(dir, name))
			want, ferr := c.File(now, strings.TrimPrefix(name, "v1/exports/"))
			if err != nil || ferr != nil || !bytes.Equal(got, want.Data) {
				t.Fatalf("%s in the mirror differs (%v, %v)", name, err, ferr)
			}
		}
		return names
	}
	if err := m.Sync(now); err != nil {
		t.Fatal(err)
	}
	first := check()
	src.add(2, day0+600, day0+1200, []fsm.Key{key(2)})
	now = now.Add(time.Minute)
	if err := m.Sync(now); err != nil {
		t.Fatal(err)
	}
	check()
	// The day's first roll-up (index.txt's only line, listed first) is not
	// listed any more, but stays an hour.
	old := filepath.Join(dir, first[0])
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("a roll-up renamed a minute ago is gone: %v", err)
	}
	past := now.Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	src.add(3, day0+1200, day0+1800, []fsm.Key{key(3)})
	if err := m.Sync(now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("an unlisted file two hours old is kept: %v", err)
	}
}
