package feed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Mirror keeps a directory holding the same bytes the node serves under
// the catalog's root: index.txt, batches.txt and every file they list, so
// that nginx or a CDN origin can serve the downloads. Files are written
// whole (temporary file, fsync, rename), so a reader never sees half of
// one; files no list has named for an hour (past retention, or a day's
// roll-up that a later seal renamed) are removed.
type Mirror struct {
	Dir     string
	Catalog *Catalog
	// last is what the directory was made for: batches and day.
	last string
}

// Sync brings the directory up to date; it does nothing when no batch and
// no day changed since the last call.
func (m *Mirror) Sync(now time.Time) error {
	c := m.Catalog
	var first, last uint32
	if b := listable(c.src.Batches()); len(b) > 0 { // a batch counts once signed
		first, last = b[0].Seq, b[len(b)-1].Seq
	}
	state := fmt.Sprintf("%d/%d/%d", first, last, dayOf(now.Unix()+1))
	if state == m.last {
		return nil
	}
	root := c.cfg.Root
	keep := map[string]bool{}
	for _, name := range slices.Concat(c.Index(now), c.BatchIndex(now)) {
		rel := strings.TrimPrefix(name, root+"/")
		keep[rel] = true
		dst := filepath.Join(m.Dir, filepath.FromSlash(name))
		if _, err := os.Stat(dst); err == nil {
			continue // a name always means the same bytes
		}
		f, err := c.File(now, rel)
		if err != nil {
			return fmt.Errorf("mirror %s: %w", name, err)
		}
		if err := writeWhole(dst, f.Data); err != nil {
			return err
		}
	}
	for rollups, name := range map[bool]string{true: "index.txt", false: "batches.txt"} {
		keep[name] = true
		if err := writeWhole(filepath.Join(m.Dir, filepath.FromSlash(path.Join(root, name))), c.IndexFile(now, rollups).Data); err != nil {
			return err
		}
	}
	if err := m.prune(filepath.Join(m.Dir, filepath.FromSlash(root)), keep, now); err != nil {
		return err
	}
	m.last = state
	return nil
}

// prune removes the files under dir that keep does not name and that were
// written more than SupersededGrace before now.
func (m *Mirror) prune(dir string, keep map[string]bool, now time.Time) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil || keep[filepath.ToSlash(rel)] || now.Sub(info.ModTime()) < SupersededGrace {
			return err
		}
		return os.Remove(p)
	})
}

// writeWhole writes a file by a temporary file, fsync and rename.
func writeWhole(dst string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return errors.Join(fmt.Errorf("mirror: write %s", dst), err)
	}
	return nil
}
