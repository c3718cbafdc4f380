package fsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// TrustGAENExport is the kind of a trusted origin that is any GAEN key
// server: this region imports its signed export files (see GAENSource).
const TrustGAENExport = "gaen-export"

// Bounds of GAEN imports: one file's export.bin travels in one log entry
// (4 MiB holds some 130,000 keys, more than any server put in one file),
// a name is a line of an index, and a region keeps the names of at most
// maxImportedFiles files (14 days of a file every five minutes from 25
// servers).
const (
	MaxImportBin     = 4 << 20
	maxImportName    = 512
	maxImportedFiles = 100_000
)

// applyImportExport imports one export file of a GAEN source: the file is
// checked as a device checks it (its signature by one of the origin's
// export keys) and its keys merged into this region's own key set as one
// submission of the origin, so that they are sealed into this region's
// batches and files. The same file again is a duplicate, answered as such;
// other content under a name already imported is refused.
func applyImportExport(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	ie := cmd.GetImportExport()
	d, digest, res := s.checkExport(ie, cmd.GetTimeUnix())
	if res != nil {
		return res
	}
	keys, revised, err := exportKeys(d.File)
	if err != nil {
		return refuse(command.CodeBadBatch, "%s file %s: %v", ie.GetOrigin(), ie.GetName(), err)
	}
	if s.imported[ie.GetOrigin()] == nil {
		s.imported[ie.GetOrigin()] = make(map[string]*fsmpb.ImportedFile)
	}
	s.imported[ie.GetOrigin()][ie.GetName()] = &fsmpb.ImportedFile{Origin: ie.GetOrigin(), Name: ie.GetName(),
		Digest: digest, EndUnix: d.File.End.Unix(), Keys: uint32(len(keys))}
	merged, revoked := s.mergeKeys("import:"+ie.GetOrigin(), [16]byte(digest), keys, revised, submissionTime(cmd))
	return &fsmpb.Result{Value: &fsmpb.Result_Import{Import: &fsmpb.ImportResult{
		Origin: ie.GetOrigin(), File: ie.GetName(), Merged: merged, Revoked: revoked}}}
}

// checkExport tells, changing nothing, whether an export file may be
// imported: its origin a GAEN source, its name new (or the same file
// again: a duplicate result), its entries well formed, signed by one of
// the origin's keys, and not ended before the retention window. It
// returns the decoded file and the SHA-256 of its export.bin, or the
// result to answer.
func (s *state) checkExport(ie *fsmpb.ImportExport, now int64) (*export.Decoded, []byte, *fsmpb.Result) {
	fail := func(code command.Code, format string, args ...any) (*export.Decoded, []byte, *fsmpb.Result) {
		return nil, nil, refuse(code, format, args...)
	}
	origin, name := ie.GetOrigin(), ie.GetName()
	src := s.trusted[origin]
	if src.GetKind() != TrustGAENExport {
		return fail(command.CodeUnknownRegion, "origin %q is not a trusted GAEN source", origin)
	}
	if !ValidImportName(name) {
		return fail(command.CodeBadBatch, "%s: a file name of 1 to %d printable characters", origin, maxImportName)
	}
	sum := sha256.Sum256(ie.GetBin())
	if kept := s.imported[origin][name]; kept != nil {
		if !bytes.Equal(kept.GetDigest(), sum[:]) {
			return fail(command.CodeBatchConflict, "%s file %s was imported with other content", origin, name)
		}
		return nil, nil, &fsmpb.Result{Value: &fsmpb.Result_Import{Import: &fsmpb.ImportResult{Origin: origin, File: name, Duplicate: true}}}
	}
	if s.importedCount() >= maxImportedFiles {
		return fail(command.CodeBadBatch, "the region keeps at most %d imported files", maxImportedFiles)
	}
	if len(ie.GetBin()) > MaxImportBin {
		return fail(command.CodeBadBatch, "%s file %s: export.bin of %d bytes, at most %d", origin, name, len(ie.GetBin()), MaxImportBin)
	}
	d, err := export.Open(ie.GetBin(), ie.GetSig())
	if err != nil {
		return fail(command.CodeBadBatch, "%s file %s: %v", origin, name, err)
	}
	if !signedBySource(d, src.GetGaen()) {
		return fail(command.CodeBadSignature, "%s file %s is not signed by any of the origin's export keys", origin, name)
	}
	if cutoff := now - int64(s.effectivePolicy().GetRetentionSeconds()); d.File.End.Unix() < cutoff {
		return fail(command.CodeFileTooOld, "%s file %s ended before the retention window", origin, name)
	}
	return d, sum[:], nil
}

// signedBySource tells whether a file carries a valid signature by one of
// a source's export keys.
func signedBySource(d *export.Decoded, src *fsmpb.GAENSource) bool {
	for _, k := range src.GetKeys() {
		pub, err := parseExportKey(k.GetPublicKeyDer())
		if err == nil && d.Verify(pub, k.GetKeyId(), k.GetKeyVersion()) == nil {
			return true
		}
	}
	return false
}

func parseExportKey(der []byte) (*ecdsa.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA public key")
	}
	return ec, nil
}

// ValidImportName tells whether a GAEN source's file name may be kept:
// 1 to 512 printable characters without spaces.
func ValidImportName(name string) bool {
	return name != "" && len(name) <= maxImportName && strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) < 0
}

// exportKeys are a file's keys and revised keys as the state holds them.
func exportKeys(f export.File) (keys, revised []Key, err error) {
	conv := func(in []export.Key) ([]Key, error) {
		out := make([]Key, 0, len(in))
		for _, k := range in {
			key, err := newKey(k.Data[:], k.RollingStart, k.RollingPeriod, k.TransmissionRisk, k.ReportType, k.DaysSinceOnset, k.HasDaysSinceOnset)
			if err != nil {
				return nil, err
			}
			out = append(out, key)
		}
		return out, nil
	}
	if keys, err = conv(f.Keys); err == nil {
		revised, err = conv(f.RevisedKeys)
	}
	return keys, revised, err
}

func (s *state) importedCount() int {
	n := 0
	for _, files := range s.imported {
		n += len(files)
	}
	return n
}

// CheckImportExport tells, without changing anything, what importing an
// export file would do at time now: nil when it would be imported,
// duplicate when it was, or the refusal. The importer checks every file
// so before it proposes it, so that the raft log does not carry bytes the
// state machine refuses.
func (f *FSM) CheckImportExport(ie *fsmpb.ImportExport, now int64) (duplicate bool, refused *command.Error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, _, res := f.state.checkExport(ie, now)
	if r := res.GetRefusal(); r != nil {
		return false, &command.Error{Code: command.Code(r.GetCode()), Message: r.GetMessage()}
	}
	return res.GetImport().GetDuplicate(), nil
}

// ImportedFile tells whether a GAEN source's file of this name was
// imported (and has not aged out).
func (f *FSM) ImportedFile(origin, name string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.imported[origin][name] != nil
}

// ImportedFiles returns copies of an origin's imported files, by name.
func (f *FSM) ImportedFiles(origin string) []*fsmpb.ImportedFile {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedImported(map[string]map[string]*fsmpb.ImportedFile{origin: f.state.imported[origin]})
}

// expireImported forgets the files that ended before cutoff: their keys
// are gone too, and checkExport refuses them as too old.
func (s *state) expireImported(cutoff int64) {
	for origin, files := range s.imported {
		for name, fi := range files {
			if fi.GetEndUnix() < cutoff {
				delete(files, name)
			}
		}
		if len(files) == 0 {
			delete(s.imported, origin)
		}
	}
}

func sortedImported(m map[string]map[string]*fsmpb.ImportedFile) []*fsmpb.ImportedFile {
	var out []*fsmpb.ImportedFile
	for _, files := range m {
		for _, fi := range files {
			out = append(out, proto.CloneOf(fi))
		}
	}
	slices.SortFunc(out, func(a, b *fsmpb.ImportedFile) int {
		if c := strings.Compare(a.GetOrigin(), b.GetOrigin()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return out
}

func captureImported(s *state, hdr *fsmpb.SnapshotHeader) persist {
	list := sortedImported(s.imported)
	hdr.ImportedFiles = uint64(len(list))
	return func(put func(proto.Message) error) error { return putAll(put, list) }
}

func restoreImported(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	for range hdr.GetImportedFiles() {
		fi := &fsmpb.ImportedFile{}
		if err := r.get(fi); err != nil {
			return fmt.Errorf("read imported file: %w", err)
		}
		if fi.GetOrigin() == "" || !ValidImportName(fi.GetName()) || len(fi.GetDigest()) != sha256.Size {
			return fmt.Errorf("imported file %q of %q: bad record", fi.GetName(), fi.GetOrigin())
		}
		if s.imported[fi.GetOrigin()] == nil {
			s.imported[fi.GetOrigin()] = make(map[string]*fsmpb.ImportedFile)
		}
		s.imported[fi.GetOrigin()][fi.GetName()] = fi
	}
	return nil
}
