package fsm

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// TrustEFGSCountry is the kind of a trusted origin that is a country of
// the EU gateway (EFGS): its keys, downloaded from the gateway and checked
// against the gateway's audit, are merged into this region's.
const TrustEFGSCountry = "efgs-country"

// Bounds of the gateway progress: a tag is the gateway's (yyyyMMdd-N) or
// an upload's digest (64 hex digits); an own batch goes up in at most
// maxEFGSTags uploads of 5,000 keys; a download batch holds at most
// MaxEFGSImportKeys keys (more than the 8 MiB a client reads of one).
const (
	maxEFGSTag        = 128
	maxEFGSTags       = 100
	MaxEFGSImportKeys = 250_000
	dayUnix           = 86_400
)

// ownIssuer tells whether a submission came from this region's own apps,
// not from another region, a GAEN source or the gateway: only those keys
// go up to the gateway.
func ownIssuer(issuer string) bool {
	for _, p := range []string{"federation:", "import:", "efgs:"} {
		if strings.HasPrefix(issuer, p) {
			return false
		}
	}
	return true
}

func (s *state) efgsState() *fsmpb.EFGSState {
	if s.efgs == nil {
		s.efgs = &fsmpb.EFGSState{}
	}
	return s.efgs
}

// nextEFGSUpload is the oldest own batch kept after the upload mark.
func (s *state) nextEFGSUpload() *Batch {
	mark := s.efgs.GetUploadMark()
	i, _ := slices.BinarySearchFunc(s.batches, mark+1, func(b *Batch, seq uint32) int { return cmp.Compare(b.Seq, seq) })
	if i == len(s.batches) {
		return nil
	}
	return s.batches[i]
}

// applyEFGSUploaded records that an own batch's keys went up to the
// gateway under its tags (from version 7). It must be the next own batch
// after the last recorded (one expired in between is passed over); the
// same record again changes nothing.
func applyEFGSUploaded(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	u := cmd.GetEfgsUploaded()
	if len(u.GetTags()) > maxEFGSTags || slices.ContainsFunc(u.GetTags(), func(t string) bool { return !validEFGSTag(t) }) {
		return refuse(command.CodeInvalidCommand, "at most %d upload tags of 1 to %d printable characters", maxEFGSTags, maxEFGSTag)
	}
	if u.GetSeq() != 0 && u.GetSeq() <= s.efgs.GetUploadMark() {
		return &fsmpb.Result{}
	}
	if next := s.nextEFGSUpload(); next == nil || next.Seq != u.GetSeq() {
		return refuse(command.CodeEFGSOrder, "batch %d is not the next own batch to upload after %d", u.GetSeq(), s.efgs.GetUploadMark())
	}
	st := s.efgsState()
	st.UploadMark = u.GetSeq()
	st.Uploads = append(st.Uploads, proto.CloneOf(u))
	return &fsmpb.Result{}
}

// applyImportEFGS imports a gateway download batch (from version 7): the
// keys of each trusted country merged as one submission of it, the others
// counted as skipped, the batch remembered and the cursor moved to it. A
// batch imported before changes nothing but, at the cursor, learns the
// tag after it (a chain that had ended when it was fetched goes on).
func applyImportEFGS(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	in := cmd.GetImportEfgs()
	switch {
	case !validEFGSTag(in.GetTag()) || in.GetNextTag() != "" && !validEFGSTag(in.GetNextTag()):
		return refuse(command.CodeBadBatch, "a download batch needs a tag (and a next tag) of 1 to %d printable characters", maxEFGSTag)
	case in.GetDayUnix() <= 0 || in.GetDayUnix()%dayUnix != 0:
		return refuse(command.CodeBadBatch, "download batch %s: its day is not the start of a UTC day", in.GetTag())
	case len(in.GetKeys()) > MaxEFGSImportKeys:
		return refuse(command.CodeBadBatch, "download batch %s: %d keys, at most %d", in.GetTag(), len(in.GetKeys()), MaxEFGSImportKeys)
	}
	res := &fsmpb.ImportResult{File: in.GetTag()}
	if s.efgsImported(in.GetTag()) {
		if c := s.efgs.GetCursor(); c.GetTag() == in.GetTag() && c.GetNextTag() == "" {
			c.NextTag = in.GetNextTag()
		}
		res.Duplicate = true
		return &fsmpb.Result{Value: &fsmpb.Result_Import{Import: res}}
	}
	byOrigin := map[string][]Key{}
	for i, ek := range in.GetKeys() {
		k, err := KeyFromProto(ek.GetKey())
		if err != nil {
			return refuse(command.CodeBadBatch, "download batch %s key %d: %v", in.GetTag(), i, err)
		}
		if t := s.trusted[ek.GetOrigin()]; t.GetKind() != TrustEFGSCountry {
			res.Skipped++
			continue
		}
		byOrigin[ek.GetOrigin()] = append(byOrigin[ek.GetOrigin()], k)
	}
	for _, origin := range slices.Sorted(maps.Keys(byOrigin)) {
		id := sha256.Sum256([]byte("efgs\x00" + in.GetTag() + "\x00" + origin))
		merged, _ := s.mergeKeys("efgs:"+origin, [16]byte(id[:16]), byOrigin[origin], nil, submissionTime(cmd))
		res.Merged += merged
	}
	st := s.efgsState()
	st.Imported = append(st.Imported, &fsmpb.EFGSImported{Tag: in.GetTag(), DayUnix: in.GetDayUnix(), Keys: uint32(len(in.GetKeys()))})
	st.Cursor = &fsmpb.EFGSCursor{DayUnix: in.GetDayUnix(), Tag: in.GetTag(), NextTag: in.GetNextTag()}
	return &fsmpb.Result{Value: &fsmpb.Result_Import{Import: res}}
}

func (s *state) efgsImported(tag string) bool {
	return slices.ContainsFunc(s.efgs.GetImported(), func(i *fsmpb.EFGSImported) bool { return i.GetTag() == tag })
}

func validEFGSTag(t string) bool { return t != "" && len(t) <= maxEFGSTag && ValidImportName(t) }

// expireEFGS forgets uploads of batches no longer kept and download
// batches of days before cutoff but the cursor's; the upload mark and the
// cursor stay.
func (s *state) expireEFGS(cutoff int64) {
	if s.efgs == nil {
		return
	}
	first := s.lastSeq + 1
	if len(s.batches) > 0 {
		first = s.batches[0].Seq
	}
	s.efgs.Uploads = slices.DeleteFunc(s.efgs.Uploads, func(u *fsmpb.EFGSUpload) bool { return u.GetSeq() < first })
	cursor := s.efgs.GetCursor().GetTag() // kept while the cursor is on it, so that it is never imported again
	s.efgs.Imported = slices.DeleteFunc(s.efgs.Imported, func(i *fsmpb.EFGSImported) bool {
		return i.GetDayUnix()+dayUnix <= cutoff && i.GetTag() != cursor
	})
}

// EFGSNextUpload returns the next own batch to upload to the gateway and
// the keys of it to upload: the real keys this region's own apps sent,
// not revoked since (padding, and keys merged from other regions, GAEN
// sources or the gateway, never go up). ok is false when every kept batch
// is accounted for.
func (f *FSM) EFGSNextUpload() (seq uint32, keys []Key, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := f.state
	b := s.nextEFGSUpload()
	if b == nil {
		return 0, nil, false
	}
	for _, k := range b.keys() {
		r, found := s.keys.find(k.Data)
		if sub := s.submissions[r.submission]; !found || r.revoked || sub == nil || !ownIssuer(sub.Issuer) {
			continue
		}
		keys = append(keys, k)
	}
	return b.Seq, keys, true
}

// EFGSProgress returns a copy of the region's progress with the gateway
// (nil: none yet).
func (f *FSM) EFGSProgress() *fsmpb.EFGSState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.state.efgs == nil {
		return nil
	}
	return proto.CloneOf(f.state.efgs)
}

// EFGSImported tells whether a gateway download batch was imported.
func (f *FSM) EFGSImported(tag string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.efgsImported(tag)
}

func captureEFGS(s *state, hdr *fsmpb.SnapshotHeader) persist {
	if s.efgs == nil {
		return nil
	}
	st := proto.CloneOf(s.efgs)
	hdr.Efgs = true
	return func(put func(proto.Message) error) error { return put(st) }
}

func restoreEFGS(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	if !hdr.GetEfgs() {
		return nil
	}
	st := &fsmpb.EFGSState{}
	if err := r.get(st); err != nil {
		return fmt.Errorf("read gateway progress: %w", err)
	}
	s.efgs = st
	return nil
}

// putEFGSCountry trusts a country of the gateway (merge is required:
// this region serves the country's keys in its own files).
func putEFGSCountry(s *state, r *fsmpb.TrustedRegion) *fsmpb.Result {
	c := r.GetRegion()
	switch old := s.trusted[c]; {
	case len(c) != 2 || strings.ToUpper(c) != c || !idPattern(c):
		return refuse(command.CodeInvalidCommand, "a gateway country is named by its two capital letters (ISO 3166-1 alpha-2), not %q", c)
	case old != nil && old.GetKind() != r.GetKind():
		return refuse(command.CodeInvalidCommand, "%q is trusted as another kind of origin: remove it first", c)
	case !r.GetMerge() || r.GetServe() || len(r.GetKeys()) > 0 || r.GetGaen() != nil || r.GetStartSeq() != 0:
		return refuse(command.CodeInvalidCommand, "gateway country %q: its keys are merged into this region's files (merge, not serve), and it has no keys of its own here", c)
	}
	s.trusted[c] = r
	return &fsmpb.Result{}
}
