package feed

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// File is a built, immutable download.
type File struct {
	Data []byte
	// ETag is the quoted SHA-256 of Data.
	ETag string
	// Gzip is Data gzip-compressed, for a list (index.txt, batches.txt),
	// which apps read whole at every poll: the same bytes on every node
	// (no name or time in the header). GzipETag is its quoted SHA-256.
	Gzip     []byte
	GzipETag string
}

func newFile(data []byte) *File {
	return &File{Data: data, ETag: ETag(data)}
}

// gzipWriters keep the compressors of lists: each holds about a megabyte
// of tables, too much to make at every list a seal changes.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestCompression) // a valid level: no error
	return zw
}}

// newListFile is a list with its gzip form.
func newListFile(data []byte) *File {
	f := newFile(data)
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	_, _ = zw.Write(data) // into memory: no error
	_ = zw.Close()
	f.Gzip = buf.Bytes()
	f.GzipETag = ETag(f.Gzip)
	return f
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
	// deltaBuilds holds a slot for each delta being built.
	deltaBuilds chan struct{}
}

// NewCatalog returns a catalog over the batches of src.
func NewCatalog(cfg Config, src Source) *Catalog {
	cfg.defaults()
	size := func(f *File) int { return len(f.Data) + len(f.Gzip) }
	return &Catalog{cfg: cfg, src: src, files: newCache(cfg.CacheEntries, cfg.CacheBytes, size),
		delta: newCache(cfg.CacheEntries, cfg.CacheBytes, size), deltaBuilds: make(chan struct{}, cfg.DeltaBuilds)}
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
	var first, last uint32
	if b := listable(c.src.Batches()); len(b) > 0 {
		first, last = b[0].Seq, b[len(b)-1].Seq
	}
	key := fmt.Sprintf("index/%v/%d/%d/%d", rollups, first, last, dayOf(now.Unix()+1))
	f, _ := c.files.get(key, func() (*File, error) {
		return newListFile([]byte(strings.Join(c.list(now, rollups), "\n"))), nil
	})
	return f
}

func (c *Catalog) list(now time.Time, rollups bool) []string {
	var out []string
	for _, s := range c.specsOf(listable(c.src.Batches()), now, rollups) {
		out = append(out, path.Join(c.cfg.Root, s.rel()))
	}
	return out
}

// specsOf are the files of batches an index lists at now: each batch's
// parts, or each day's roll-up's.
func (c *Catalog) specsOf(batches []fsm.BatchInfo, now time.Time, rollups bool) []fileSpec {
	oldest := dayOf(now.Unix()+1) - int64(c.cfg.Retention/time.Second)
	var specs []fileSpec
	var counts []int
	for _, b := range batches {
		day := dayOf(b.EndUnix)
		if day < oldest {
			continue
		}
		n := b.Keys + b.Padding + b.Revised
		if !rollups {
			specs, counts = append(specs, fileSpec{start: b.StartUnix, end: b.EndUnix}), append(counts, n)
			continue
		}
		if last := len(specs) - 1; last >= 0 && dayOf(specs[last].end) == day {
			specs[last].end = b.EndUnix
			counts[last] += n
			continue
		}
		specs, counts = append(specs, fileSpec{rollup: true, start: b.EndUnix - 1, end: b.EndUnix}), append(counts, n)
	}
	var out []fileSpec
	for i, s := range specs {
		for p := 1; p <= parts(counts[i], c.cfg.MaxKeysPerFile); p++ {
			s.part = p
			out = append(out, s)
		}
	}
	return out
}

// SupersededGrace is how long a roll-up name stays served after a seal
// replaced it in index.txt: an app that read the index just before one
// seal, or several, still finds every file it listed. The mirror keeps its
// files as long.
const SupersededGrace = time.Hour

// File returns the export file with the given path relative to the root,
// building it on first use; now tells which superseded roll-up names are
// still within SupersededGrace.
func (c *Catalog) File(now time.Time, rel string) (*File, error) {
	key := "file/" + rel // apart from the index and signature entries
	if f, ok := c.files.lookup(key); ok {
		return f, nil // what apps fetch most: no name to parse
	}
	spec, err := parseName(rel)
	if err != nil {
		return nil, err
	}
	return c.files.get(key, func() (*File, error) { return c.build(spec, now) })
}

func (c *Catalog) build(spec fileSpec, now time.Time) (*File, error) {
	f, signing, err := c.exportFile(spec, now)
	if err != nil {
		return nil, err
	}
	data, err := export.Encode(f, signing)
	if errors.Is(err, ErrNotSigned) {
		return nil, ErrNotSigned
	}
	if err != nil {
		return nil, fmt.Errorf("encode export %s: %w", spec.rel(), err)
	}
	return newFile(data), nil
}

// exportFile is the content of a file and the keys that sign it.
func (c *Catalog) exportFile(spec fileSpec, now time.Time) (export.File, []export.SigningKey, error) {
	keys, revised, signers, last, err := c.content(spec, now)
	if err != nil {
		return export.File{}, nil, err
	}
	signing, err := c.signingKeys(signers, last)
	if err != nil {
		return export.File{}, nil, err
	}
	perFile := c.cfg.MaxKeysPerFile
	if spec.part > parts(len(keys)+len(revised), perFile) || len(revised) > perFile {
		return export.File{}, nil, ErrNotFound
	}
	// Part 1 carries the revised keys; keys fill the rest, max per file.
	first := perFile - len(revised)
	lo, hi := 0, min(first, len(keys))
	if spec.part > 1 {
		lo = first + (spec.part-2)*perFile
		hi = min(lo+perFile, len(keys))
		revised = nil
	}
	start := spec.start
	if spec.rollup {
		start = dayOf(spec.end) // the name's start tells the content apart
	}
	f := export.File{
		Start: time.Unix(start, 0), End: time.Unix(spec.end+int64(spec.part-1), 0),
		Region: c.cfg.Region, BatchNum: 1, BatchSize: 1, Keys: keys[lo:hi], RevisedKeys: revised,
	}
	return f, signing, nil
}

// content gathers the keys of the batches a file covers, and the export
// keys of the last of them, last (those in force when it was sealed sign
// the file, and it keeps the file's replicated signatures). A roll-up's name starts one second before the end of its first
// batch, so that a day that retention shrank gets a new name: a node that
// no longer has the first batch, or not yet the last, has no such file.
func (c *Catalog) content(spec fileSpec, now time.Time) (keys, revised []export.Key, signers []*fsmpb.ExportSigner, last uint32, err error) {
	var seqs []uint32
	var dayEnds []int64 // ends of the batches of the roll-up's day
	for _, b := range c.src.Batches() {
		switch {
		case !spec.rollup && b.StartUnix == spec.start && b.EndUnix == spec.end:
			seqs, signers, dayEnds = append(seqs, b.Seq), b.Signers, []int64{b.EndUnix}
		case spec.rollup && dayOf(b.EndUnix) == dayOf(spec.end):
			dayEnds = append(dayEnds, b.EndUnix)
			if b.EndUnix <= spec.end {
				seqs, signers = append(seqs, b.Seq), b.Signers
			}
		}
	}
	if !listedName(spec, dayEnds, now) || len(seqs) == 0 {
		return nil, nil, nil, 0, ErrNotFound
	}
	for _, seq := range seqs {
		k, r, ok := c.src.BatchKeys(seq)
		if !ok {
			return nil, nil, nil, 0, ErrNotFound
		}
		for _, x := range k {
			keys = append(keys, exportKey(x))
		}
		for _, x := range r {
			revised = append(revised, exportKey(x))
		}
	}
	slices.SortFunc(keys, func(a, b export.Key) int { return compareData(a.Data, b.Data) })
	return keys, revised, signers, seqs[len(seqs)-1], nil
}

// listedName tells whether a file name is one the index lists, or listed
// within SupersededGrace: a batch file of a kept batch, or a roll-up from
// the first batch of its day to the last, or to one that a seal replaced
// less than SupersededGrace before now (the one before the last always).
// Other windows of a day are never built, so the names a client can make
// the node build are bounded by the seals of an hour.
func listedName(spec fileSpec, dayEnds []int64, now time.Time) bool {
	n := len(dayEnds)
	switch {
	case n == 0:
		return false
	case !spec.rollup:
		return true
	case dayEnds[0] != spec.start+1:
		return false
	}
	i := slices.Index(dayEnds, spec.end)
	return i >= n-2 || i >= 0 && dayEnds[i+1] >= now.Add(-SupersededGrace).Unix()
}

// signingKeys are the keys for the signers a file names, in that order:
// a key whose signatures are replicated signs with the signature batch
// last keeps (replicated), any other with this node's own private key; a
// file sealed before signers were kept is signed with every private key.
// A signer this node has no private key for means the file cannot be
// built here with the bytes it has elsewhere: ErrNoSigningKey (a key kept
// in an HSM never signs here: its signatures differ each time).
func (c *Catalog) signingKeys(signers []*fsmpb.ExportSigner, last uint32) ([]export.SigningKey, error) {
	own := slices.DeleteFunc(slices.Clone(c.cfg.SigningKeys), func(k export.SigningKey) bool { return k.Private == nil })
	if len(signers) == 0 {
		if len(own) == 0 {
			return nil, ErrNoSigningKey
		}
		return own, nil
	}
	out := make([]export.SigningKey, 0, len(signers))
	for _, sg := range signers {
		if len(sg.GetPublicKey()) > 0 {
			k, err := replicatedKey(c.src, sg, last, 0)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
			continue
		}
		i := slices.IndexFunc(own, func(k export.SigningKey) bool {
			return k.KeyID == sg.GetKeyId() && k.KeyVersion == sg.GetKeyVersion()
		})
		if i < 0 {
			return nil, fmt.Errorf("%w: %s/%s", ErrNoSigningKey, sg.GetKeyId(), sg.GetKeyVersion())
		}
		out = append(out, own[i])
	}
	return out, nil
}

func compareData(a, b [16]byte) int {
	return slices.Compare(a[:], b[:])
}

var _ Source = (*fsm.FSM)(nil)
