// Package gaenimport imports the signed export files of any GAEN key
// server, as the reference key server's export-importer does: a leader
// reads each GAEN source's index.txt, fetches the files it has not
// imported, and proposes each as IMPORT_EXPORT, whose state machine checks
// the file's signature by one of the source's export keys before its keys
// join this region's (fsm/gaenimport.go). The keys are then sealed into
// this region's batches and served to its apps signed by this region.
package gaenimport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/outbound"
)

// Bounds of what a source makes a node read: an index.txt of 1 MiB holds
// some 15,000 names; a zip of 8 MiB (export.bin compresses little) more
// keys than fsm.MaxImportBin lets into one log entry; at most
// FilesPerPoll files are fetched in one poll of a source, the rest at the
// next; refusals are remembered for at most maxRefused files.
const (
	MaxIndex     = 1 << 20
	MaxFile      = 8 << 20
	FilesPerPoll = 200
	maxRefused   = 10_000
	fetchTimeout = 30 * time.Second
)

// State is what the importer reads of the region's state; *fsm.FSM
// implements it.
type State interface {
	Trusted() []*fsmpb.TrustedRegion
	ImportedFile(origin, name string) bool
	CheckImportExport(ie *fsmpb.ImportExport, now int64) (duplicate bool, refused *command.Error)
}

// Counter counts a source's files by outcome ("imported", or why a file
// was refused: "malformed", a refusal code of the state machine).
type Counter func(origin, outcome string)

// Importer polls GAEN sources. One runs on the leader (a leader job); it
// keeps in memory when it last polled each source and the files it
// refused, which it does not fetch again.
type Importer struct {
	client    *http.Client
	allowHTTP bool
	logger    *slog.Logger
	count     Counter
	polled    map[string]time.Time
	refused   map[string]bool
}

// New returns an importer that fetches with client (HTTPS only unless
// allowHTTP), logs to logger and counts outcomes with count (may be nil).
func New(client *http.Client, allowHTTP bool, logger *slog.Logger, count Counter) *Importer {
	if count == nil {
		count = func(string, string) {}
	}
	return &Importer{client: client, allowHTTP: allowHTTP, logger: logger, count: count,
		polled: map[string]time.Time{}, refused: map[string]bool{}}
}

// Poll polls every GAEN source whose poll interval has passed since this
// importer last polled it, at time now; it returns the files imported. A
// source that cannot be read is logged and polled again next time.
func (im *Importer) Poll(ctx context.Context, st State, a command.Applier, now time.Time) int {
	n := 0
	for _, src := range st.Trusted() {
		interval := time.Duration(src.GetGaen().GetPollSeconds()) * time.Second
		if src.GetKind() != fsm.TrustGAENExport || now.Sub(im.polled[src.GetRegion()]) < interval {
			continue
		}
		im.polled[src.GetRegion()] = now
		got, err := im.Source(ctx, st, a, src, now)
		n += got
		if err != nil {
			im.logger.Warn("gaen import: source not read", "origin", src.GetRegion(), "err", err)
		}
	}
	return n
}

// Source reads one source's index and imports up to FilesPerPoll files it
// lists that are neither imported nor refused before, in the index's
// order. A file that is malformed or that the state machine would refuse
// is counted, logged and remembered, and never proposed; an error of the
// network or of the region ends the poll (the next one tries again).
func (im *Importer) Source(ctx context.Context, st State, a command.Applier, src *fsmpb.TrustedRegion, now time.Time) (int, error) {
	origin, cfg := src.GetRegion(), src.GetGaen()
	// A refusal is remembered with the source's settings: once an
	// operator changes them (a rotated key added), the file is tried again.
	enc, _ := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	sum := sha256.Sum256(enc)
	settings := hex.EncodeToString(sum[:8])
	index, err := im.get(ctx, cfg.GetIndexUrl(), MaxIndex)
	if err != nil {
		return 0, err
	}
	imported, fetched := 0, 0
	for _, name := range Names(index) {
		if fetched == FilesPerPoll {
			break
		}
		key := origin + "\x00" + settings + "\x00" + name
		if st.ImportedFile(origin, name) || im.refused[key] {
			continue
		}
		if !fsm.ValidImportName(name) {
			im.refuse(key, origin, name, "bad_name", fmt.Errorf("a file name of 1 to 512 printable characters"))
			continue
		}
		fetched++
		fileURL, err := Resolve(cfg.GetExportRoot(), name)
		if err != nil {
			im.refuse(key, origin, name, "bad_name", err)
			continue
		}
		data, err := im.get(ctx, fileURL, MaxFile)
		if err != nil {
			return imported, err
		}
		ok, err := im.importFile(ctx, st, a, key, origin, name, data, now)
		if err != nil {
			return imported, err
		}
		if ok {
			imported++
		}
	}
	return imported, nil
}

// importFile checks one fetched file and proposes it; it tells whether
// the file was imported now.
func (im *Importer) importFile(ctx context.Context, st State, a command.Applier, key, origin, name string, data []byte, now time.Time) (bool, error) {
	d, err := export.Decode(data)
	if err != nil {
		im.refuse(key, origin, name, "malformed", err)
		return false, nil
	}
	ie := &fsmpb.ImportExport{Origin: origin, Name: name, Bin: d.Bin, Sig: d.Sig}
	if dup, refused := st.CheckImportExport(ie, now.Unix()); refused != nil || dup {
		if refused != nil {
			im.refuse(key, origin, name, string(refused.Code), refused)
		}
		return false, nil
	}
	res, err := command.ImportExport(ctx, a, ie)
	var refused *command.Error
	switch {
	case errors.As(err, &refused):
		im.refuse(key, origin, name, string(refused.Code), refused)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("import %s: %w", name, err)
	}
	if res.GetDuplicate() {
		im.count(origin, "duplicate")
		return false, nil
	}
	im.count(origin, "imported")
	im.logger.Info("gaen import: file imported", "origin", origin, "file", name, "merged", res.GetMerged(), "revoked", res.GetRevoked())
	return true, nil
}

// refuse counts, logs and remembers a file that is not imported (under
// the source's settings: key), a file ended before the retention window
// quietly (a source lists old files).
func (im *Importer) refuse(key, origin, name, why string, err error) {
	if len(im.refused) >= maxRefused {
		clear(im.refused) // tried again, once each, after many refusals
	}
	im.refused[key] = true
	im.count(origin, why)
	if why == string(command.CodeFileTooOld) {
		return
	}
	im.logger.Warn("gaen import: file refused", "origin", origin, "file", name, "why", why, "err", err)
}

// Names are the file names an index.txt lists, one a line, blank lines
// left out, in the index's order.
func Names(index []byte) []string {
	var out []string
	for _, line := range strings.Split(string(index), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// Resolve is the URL of a file an index names, under the source's export
// root: a relative path that stays under the root (no scheme, host,
// query, "..", or leading slash), so that an index cannot send the node
// anywhere else.
func Resolve(root, name string) (string, error) {
	u, err := url.Parse(name)
	switch {
	case err != nil:
		return "", fmt.Errorf("file name %q: %w", name, err)
	case u.Scheme != "" || u.Host != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\"):
		return "", fmt.Errorf("file name %q is not a path under the export root", name)
	}
	for _, part := range strings.Split(u.Path, "/") {
		if part == ".." || part == "." {
			return "", fmt.Errorf("file name %q leaves the export root", name)
		}
	}
	return strings.TrimSuffix(root, "/") + "/" + u.EscapedPath(), nil
}

// get reads rawURL whole, at most limit bytes (outbound.Get), within
// fetchTimeout.
func (im *Importer) get(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	return outbound.Get(ctx, im.client, rawURL, im.allowHTTP, limit, "")
}
