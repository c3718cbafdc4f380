package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
)

// File is a built, immutable download.
type File struct {
	Data []byte
	// ETag is the quoted SHA-256 of Data.
	ETag string
}

func newFile(data []byte) *File {
	return &File{Data: data, ETag: ETag(data)}
}

// ETag is the quoted SHA-256 of data: equal bytes, equal tag on every node.
func ETag(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// Catalog serves a region's GAEN export files.
type Catalog struct {
	cfg   Config
	src   Source
	files *cache[*File]
	delta *cache[*File]
}

// NewCatalog returns a catalog over the batches of src.
func NewCatalog(cfg Config, src Source) *Catalog {
	cfg.defaults()
	return &Catalog{cfg: cfg, src: src, files: newCache[*File](cfg.CacheEntries), delta: newCache[*File](cfg.CacheEntries)}
}

// Index lists, oldest first, the daily roll-ups of the retention window
// (14 complete days and today: at most 15 files, within what a device
// processes in a day), as paths under the root.
func (c *Catalog) Index(now time.Time) []string {
	return c.list(now, true)
}

// BatchIndex lists every batch file of the retention window, oldest first,
// for clients that poll often and want small increments.
func (c *Catalog) BatchIndex(now time.Time) []string {
	return c.list(now, false)
}

// IndexFile is index.txt (rollups) or batches.txt as served, one path a
// line. It changes only with the batches kept or the day, so it is built
// once per (oldest and newest batch, day) however often apps poll.
func (c *Catalog) IndexFile(now time.Time, rollups bool) *File {
	var first uint32
	if b := c.src.Batches(); len(b) > 0 {
		first = b[0].Seq
	}
	key := fmt.Sprintf("index/%v/%d/%d/%d", rollups, first, c.src.LastBatch(), dayOf(now.Unix()+1))
	f, _ := c.files.get(key, func() (*File, error) {
		return newFile([]byte(strings.Join(c.list(now, rollups), "\n"))), nil
	})
	return f
}

func (c *Catalog) list(now time.Time, rollups bool) []string {
	oldest := dayOf(now.Unix()+1) - int64(c.cfg.Retention/time.Second)
	var specs []fileSpec
	var counts []int
	for _, b := range c.src.Batches() {
		day := dayOf(b.EndUnix)
		if day < oldest {
			continue
		}
		n := b.Keys + b.Padding + b.Revised
		if !rollups {
			specs, counts = append(specs, fileSpec{start: b.StartUnix, end: b.EndUnix}), append(counts, n)
			continue
		}
		if last := len(specs) - 1; last >= 0 && specs[last].start == day {
			specs[last].end = b.EndUnix
			counts[last] += n
			continue
		}
		specs, counts = append(specs, fileSpec{rollup: true, start: day, end: b.EndUnix}), append(counts, n)
	}
	var out []string
	for i, s := range specs {
		for p := 1; p <= parts(counts[i], c.cfg.MaxKeysPerFile); p++ {
			s.part = p
			out = append(out, path.Join(c.cfg.Root, s.rel()))
		}
	}
	return out
}

// File returns the export file with the given path relative to the root,
// building it on first use.
func (c *Catalog) File(rel string) (*File, error) {
	spec, err := parseName(rel)
	if err != nil {
		return nil, err
	}
	return c.files.get(rel, func() (*File, error) { return c.build(spec) })
}

func (c *Catalog) build(spec fileSpec) (*File, error) {
	if len(c.cfg.SigningKeys) == 0 {
		return nil, ErrNoSigningKey
	}
	keys, revised, err := c.content(spec)
	if err != nil {
		return nil, err
	}
	perFile := c.cfg.MaxKeysPerFile
	if spec.part > parts(len(keys)+len(revised), perFile) || len(revised) > perFile {
		return nil, ErrNotFound
	}
	// Part 1 carries the revised keys; keys fill the rest, max per file.
	first := perFile - len(revised)
	lo, hi := 0, min(first, len(keys))
	if spec.part > 1 {
		lo = first + (spec.part-2)*perFile
		hi = min(lo+perFile, len(keys))
		revised = nil
	}
	f := export.File{
		Start: time.Unix(spec.start, 0), End: time.Unix(spec.end+int64(spec.part-1), 0),
		Region: c.cfg.Region, BatchNum: 1, BatchSize: 1, Keys: keys[lo:hi], RevisedKeys: revised,
	}
	data, err := export.Encode(f, c.cfg.SigningKeys)
	if err != nil {
		return nil, fmt.Errorf("encode export %s: %w", spec.rel(), err)
	}
	return newFile(data), nil
}

// content gathers the keys of the batches a file covers.
func (c *Catalog) content(spec fileSpec) (keys, revised []export.Key, err error) {
	var seqs []uint32
	found := false
	for _, b := range c.src.Batches() {
		switch {
		case !spec.rollup && b.StartUnix == spec.start && b.EndUnix == spec.end:
			seqs, found = append(seqs, b.Seq), true
		case spec.rollup && b.EndUnix > spec.start && b.EndUnix <= spec.end:
			seqs = append(seqs, b.Seq)
			found = found || b.EndUnix == spec.end
		}
	}
	if !found {
		return nil, nil, ErrNotFound
	}
	for _, seq := range seqs {
		k, r, ok := c.src.BatchKeys(seq)
		if !ok {
			return nil, nil, ErrNotFound
		}
		for _, x := range k {
			keys = append(keys, exportKey(x))
		}
		for _, x := range r {
			revised = append(revised, exportKey(x))
		}
	}
	slices.SortFunc(keys, func(a, b export.Key) int { return compareData(a.Data, b.Data) })
	return keys, revised, nil
}

func compareData(a, b [16]byte) int {
	return slices.Compare(a[:], b[:])
}

var _ Source = (*fsm.FSM)(nil)
