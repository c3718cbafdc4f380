package fsm

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// SnapshotVersion is the newest snapshot encoding this build writes and reads.
const SnapshotVersion = 1

// section is one group of the state in a snapshot, as consul's state
// machine registers a persist and a restore per kind of state. capture
// copies the group under the state's read lock and sets its counts (and
// any field of its own) in the header; the persist it returns sorts and
// writes the group's records later, outside the lock, while Apply goes
// on. restore reads them back, checking each. A new kind of state is a
// field of SnapshotHeader and one entry of sections.
type section struct {
	name    string
	capture func(s *state, hdr *fsmpb.SnapshotHeader) persist
	restore func(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error
}

// persist writes a captured section's records, each a length-delimited
// message, through put; nil for a section the header holds whole.
type persist func(put func(proto.Message) error) error

// sections are the groups of the state in the order their records follow
// the header. The region's own fields (times, policy) restore last, as
// they are checked against the rest.
var sections = []section{
	{"authorities", captureAuthorities, restoreAuthorities},
	{"nodes", captureNodes, restoreNodes},
	{"submissions", captureSubmissions, restoreSubmissions},
	{"batches", captureBatches, restoreBatches},
	{"keys", captureKeys, restoreKeys},
	{"revocations", captureRevocations, restoreRevocations},
	{"providers and codes", captureAccess, readAccess},
	{"federation", captureFederation, readFederation},
	{"verification", captureVerification, readVerification},
	{"sessions", captureSessions, restoreSessions},
	{"revoked certificates", captureRevokedCerts, restoreRevokedCerts},
	{"imported files", captureImported, restoreImported},
	{"gateway progress", captureEFGS, restoreEFGS},
	{"hub", captureHub, restoreHub},
	{"app configuration", captureAppConfigs, restoreAppConfigs},
	{"region", captureRegion, restoreRegion},
}

// snapshot is a point-in-time copy of the state: the header and each
// section's persist.
type snapshot struct {
	hdr      *fsmpb.SnapshotHeader
	persists []persist
}

func (s *state) capture() *snapshot {
	sn := &snapshot{hdr: &fsmpb.SnapshotHeader{Version: SnapshotVersion}}
	for _, sec := range sections {
		sn.persists = append(sn.persists, sec.capture(s, sn.hdr))
	}
	return sn
}

// Persist writes the snapshot: the header, then every section's records,
// sorted so that equal states give equal bytes.
func (sn *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := sn.write(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release is a no-op: the snapshot holds only copies.
func (sn *snapshot) Release() {}

func (sn *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	put := func(m proto.Message) error {
		_, err := protodelim.MarshalTo(bw, m)
		return err
	}
	if err := put(sn.hdr); err != nil {
		return err
	}
	for i, p := range sn.persists {
		if p == nil {
			continue
		}
		if err := p(put); err != nil {
			return fmt.Errorf("write %s: %w", sections[i].name, err)
		}
	}
	return bw.Flush()
}

// putAll writes records in order.
func putAll[M proto.Message](put func(proto.Message) error, records []M) error {
	for _, m := range records {
		if err := put(m); err != nil {
			return err
		}
	}
	return nil
}

func captureAuthorities(s *state, hdr *fsmpb.SnapshotHeader) persist {
	list := sortedClones(s.authorities)
	hdr.Authorities = uint64(len(list))
	return func(put func(proto.Message) error) error { return putAll(put, list) }
}

func captureNodes(s *state, hdr *fsmpb.SnapshotHeader) persist {
	list := sortedClones(s.nodes)
	hdr.Nodes = uint64(len(list))
	return func(put func(proto.Message) error) error { return putAll(put, list) }
}

func captureSubmissions(s *state, hdr *fsmpb.SnapshotHeader) persist {
	subs := make([]Submission, 0, len(s.submissions))
	for _, sub := range s.submissions {
		subs = append(subs, *sub)
	}
	hdr.Submissions, hdr.NextSubmission = uint64(len(subs)), s.nextSubmission
	return func(put func(proto.Message) error) error {
		slices.SortFunc(subs, func(a, b Submission) int { return cmp.Compare(a.Index, b.Index) })
		for _, sub := range subs {
			if err := put(submissionProto(sub)); err != nil {
				return err
			}
		}
		return nil
	}
}

func captureBatches(s *state, hdr *fsmpb.SnapshotHeader) persist {
	batches := slices.Clone(s.batches) // immutable once sealed, so shared
	hdr.Batches, hdr.LastBatchSeq, hdr.LastSealUnix = uint64(len(batches)), s.lastSeq, s.lastSealUnix
	return func(put func(proto.Message) error) error {
		for _, b := range batches {
			if err := put(batchProto(b)); err != nil {
				return err
			}
		}
		return nil
	}
}

func captureKeys(s *state, hdr *fsmpb.SnapshotHeader) persist {
	keys := make([]Key, 0, s.keys.len())
	for data, r := range s.keys.all() {
		keys = append(keys, r.key(data))
	}
	hdr.Keys = uint64(len(keys))
	return func(put func(proto.Message) error) error {
		slices.SortFunc(keys, func(a, b Key) int { return bytes.Compare(a.Data[:], b.Data[:]) })
		var rec fsmpb.StoredKey
		for _, k := range keys {
			rec.Key, rec.Submission, rec.Batch, rec.Revoked, rec.Revised = k.Proto(), k.Submission, k.Batch, k.Revoked, k.Revised
			if err := put(&rec); err != nil {
				return err
			}
		}
		return nil
	}
}

func captureRevocations(s *state, hdr *fsmpb.SnapshotHeader) persist {
	list := slices.Clone(s.revocations) // records are never changed
	hdr.Revocations = uint64(len(list))
	return func(put func(proto.Message) error) error { return putAll(put, list) }
}

func captureAccess(s *state, hdr *fsmpb.SnapshotHeader) persist {
	providers, codes := sortedClones(s.providers), sortedCodes(s.codes)
	hdr.Providers, hdr.Codes = uint64(len(providers)), uint64(len(codes))
	return func(put func(proto.Message) error) error {
		if err := putAll(put, providers); err != nil {
			return err
		}
		return putAll(put, codes)
	}
}

func captureFederation(s *state, hdr *fsmpb.SnapshotHeader) persist {
	trusted, foreign := sortedClones(s.trusted), s.foreignList() // kept batches are immutable, so shared
	hdr.Trusted, hdr.Foreign = uint64(len(trusted)), uint64(len(foreign))
	hdr.LastDigest, hdr.OriginMarks = s.lastDigest, sortedMarks(s.marks) // marks are replaced, never changed
	return func(put func(proto.Message) error) error {
		if err := putAll(put, trusted); err != nil {
			return err
		}
		return putAll(put, foreign)
	}
}

func captureVerification(s *state, hdr *fsmpb.SnapshotHeader) persist {
	r := s.verificationRecords()
	hdr.ApiKeys, hdr.VerificationCodes, hdr.VerificationTokens = uint64(len(r.apiKeys)), uint64(len(r.codes)), uint64(len(r.tokens))
	hdr.Users, hdr.AuditEvents = uint64(len(r.users)), uint64(len(r.audit))
	return r.write
}

func captureSessions(s *state, hdr *fsmpb.SnapshotHeader) persist {
	list := s.sessions.list()
	hdr.Sessions = uint64(len(list))
	return func(put func(proto.Message) error) error { return putAll(put, list) }
}

// captureRegion sets the region's own fields, which the header holds
// whole: the last command time, the policy, the keys revised since the
// last batch.
func captureRegion(s *state, hdr *fsmpb.SnapshotHeader) persist {
	hdr.LastTimeUnix, hdr.Policy, hdr.Service = s.lastTime, proto.CloneOf(s.policy), proto.CloneOf(s.service)
	pending := slices.Clone(s.revisedPending)
	slices.SortFunc(pending, compareTEK)
	for _, k := range pending {
		hdr.RevisedPending = append(hdr.RevisedPending, k[:])
	}
	return nil
}

// maxPrealloc bounds the room reserved from the header's counts: a corrupted
// count must fail on the missing records, not exhaust memory (a huge count
// made make() throw a fatal, unrecoverable out-of-memory error).
const maxPrealloc = 1 << 22

// maxRecordBytes bounds one record of a snapshot. A batch record holds all
// its keys (about 32 bytes each): large batches fit, and a corrupted length
// still cannot claim more.
const maxRecordBytes = 1 << 30

// snapshotReader reads a snapshot's records: get decodes the next one;
// keys are read from br without reflection (keydecode.go). legacy holds
// the batches of older snapshots that list their keys' bytes only, filled
// in once the keys are read.
type snapshotReader struct {
	br     *bufio.Reader
	get    func(proto.Message) error
	legacy map[*Batch][]TEK
}

// readSnapshot decodes what write wrote, section by section, checking
// every record.
func readSnapshot(r io.Reader) (*state, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	opts := protodelim.UnmarshalOptions{MaxSize: maxRecordBytes}
	sr := &snapshotReader{br: br, get: func(m proto.Message) error { return opts.UnmarshalFrom(br, m) }}
	var hdr fsmpb.SnapshotHeader
	if err := sr.get(&hdr); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if hdr.GetVersion() == 0 || hdr.GetVersion() > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d, this build reads 1..%d", hdr.GetVersion(), SnapshotVersion)
	}
	s := newState()
	for _, sec := range sections {
		if err := sec.restore(s, &hdr, sr); err != nil {
			return nil, err
		}
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the last record")
	}
	return s, nil
}

func restoreAuthorities(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	for range hdr.GetAuthorities() {
		a := &fsmpb.Authority{}
		if err := r.get(a); err != nil {
			return fmt.Errorf("read authority: %w", err)
		}
		s.authorities[a.GetIssuer()] = a
	}
	return nil
}

func restoreNodes(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	for range hdr.GetNodes() {
		n := &fsmpb.Node{}
		if err := r.get(n); err != nil {
			return fmt.Errorf("read node: %w", err)
		}
		s.nodes[n.GetId()] = n
	}
	return nil
}

func restoreRevocations(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	for range hdr.GetRevocations() {
		rv := &fsmpb.Revocation{}
		if err := r.get(rv); err != nil {
			return fmt.Errorf("read revocation: %w", err)
		}
		s.revocations = append(s.revocations, rv)
	}
	return nil
}

func restoreSessions(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	return readSessions(s, hdr.GetSessions(), r.get)
}

func restoreSubmissions(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	return readSubmissions(s, hdr, r.get)
}

func restoreBatches(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	legacy, err := readBatches(s, hdr.GetBatches(), r.get)
	r.legacy = legacy
	return err
}

// restoreKeys reads the keys, then gives the batches of older snapshots
// copies of theirs.
func restoreKeys(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	if err := readKeys(s, hdr.GetKeys(), r.br); err != nil {
		return err
	}
	return s.fillLegacy(r.legacy)
}

func restoreRegion(s *state, hdr *fsmpb.SnapshotHeader, _ *snapshotReader) error {
	s.service = proto.CloneOf(hdr.GetService())
	return s.restoreDerived(hdr)
}

func readSubmissions(s *state, hdr *fsmpb.SnapshotHeader, get func(proto.Message) error) error {
	// Snapshots from before submissions could expire numbered them by
	// position and had no next_submission.
	byPosition := hdr.GetNextSubmission() == 0
	var p fsmpb.Submission
	for i := range hdr.GetSubmissions() {
		if err := get(&p); err != nil {
			return fmt.Errorf("read submission %d: %w", i, err)
		}
		if len(p.GetId()) != 16 {
			return fmt.Errorf("submission %d: id is not 16 bytes", i)
		}
		sub := &Submission{
			Index: p.GetIndex(), ID: [16]byte(p.GetId()), TimeUnix: p.GetTimeUnix(), AppID: intern(p.GetAppId()), Issuer: intern(p.GetIssuer()),
			CertificateDigest: p.GetCertificateDigest(), Traveler: p.GetTraveler(), KeyCount: p.GetKeyCount(),
			Provider: intern(p.GetProvider()), CodeHash: p.GetCodeHash(),
		}
		if byPosition {
			sub.Index = uint32(i)
		}
		if _, dup := s.submissions[sub.Index]; dup {
			return fmt.Errorf("submission %d: number %d twice", i, sub.Index)
		}
		s.submissions[sub.Index] = sub
		s.submissionIdx[sub.ID] = sub.Index
	}
	s.nextSubmission = hdr.GetNextSubmission()
	if byPosition {
		s.nextSubmission = uint32(len(s.submissions))
	}
	return nil
}

func readKeys(s *state, n uint64, br *bufio.Reader) error {
	s.keys = newKeyTable(int(min(n, maxPrealloc)))
	ins := newKeyInserter(s.keys)
	defer ins.wait()
	live := newLiveCounter(s.submissions)
	defer live.flush(s.live)
	var rec storedKey
	var buf []byte
	var prev TEK
	for i := range n {
		b, err := nextRecord(br, &buf)
		if err == nil {
			err = decodeStoredKey(b, &rec)
		}
		if err != nil {
			return fmt.Errorf("read key %d: %w", i, err)
		}
		k, err := rec.key()
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		if i > 0 && bytes.Compare(prev[:], k.Data[:]) >= 0 {
			return fmt.Errorf("key %d: not in ascending order (duplicate or corrupted)", i)
		}
		prev = k.Data
		if !live.add(k.Submission) {
			return fmt.Errorf("key %d: unknown submission %d", i, k.Submission)
		}
		ins.add(k.Data, k.record())
		if k.Batch == 0 && !k.Revoked {
			s.pending = append(s.pending, k.Data)
		}
	}
	return nil
}

// keyInserter fills the key table of a restore on a goroutine of its own
// while the snapshot's records are read and checked: inserting a million
// keys (in key order, so in no order of the table's) was as long as reading
// them, and the two overlap on two cores (BenchmarkRestore1M). Keys go in
// chunks through two buffers that the two goroutines swap.
type keyInserter struct {
	chunk []keyEntry
	full  chan []keyEntry
	empty chan []keyEntry
	done  chan struct{}
}

const insertChunk = 4096

func newKeyInserter(t *keyTable) *keyInserter {
	ins := &keyInserter{full: make(chan []keyEntry, 1), empty: make(chan []keyEntry, 2), done: make(chan struct{})}
	ins.chunk = make([]keyEntry, 0, insertChunk)
	ins.empty <- make([]keyEntry, 0, insertChunk)
	go func() {
		defer close(ins.done)
		for c := range ins.full {
			for _, e := range c {
				t.set(e.data, e.rec)
			}
			ins.empty <- c[:0]
		}
	}()
	return ins
}

func (ins *keyInserter) add(data TEK, rec keyRecord) {
	ins.chunk = append(ins.chunk, keyEntry{data, rec})
	if len(ins.chunk) == insertChunk {
		ins.full <- ins.chunk
		ins.chunk = <-ins.empty
	}
}

// wait inserts what is left and returns once every key is in the map.
func (ins *keyInserter) wait() {
	if len(ins.chunk) > 0 {
		ins.full <- ins.chunk
	}
	close(ins.full)
	<-ins.done
}

// liveCounter counts a snapshot's keys per submission while they are read.
// Keys come in key order, so their submissions in no order: counting in a
// slice indexed by submission number, rather than in the maps, saves a
// third of a 1M-key restore (BenchmarkRestore1M). Numbers spread too wide
// for a slice are counted in the map.
type liveCounter struct {
	base   uint32
	counts []uint32 // 1 + keys of a known submission, 0 for an unknown one
	subs   map[uint32]*Submission
	live   map[uint32]uint32
}

func newLiveCounter(subs map[uint32]*Submission) *liveCounter {
	c := &liveCounter{subs: subs, live: map[uint32]uint32{}}
	if len(subs) == 0 {
		return c
	}
	lo, hi := uint32(math.MaxUint32), uint32(0)
	for idx := range subs {
		lo, hi = min(lo, idx), max(hi, idx)
	}
	if span := uint64(hi-lo) + 1; span <= 8*uint64(len(subs))+1024 {
		c.base, c.counts = lo, make([]uint32, span)
		for idx := range subs {
			c.counts[idx-lo] = 1
		}
	}
	return c
}

// add counts a key of submission idx; false if there is no such submission.
func (c *liveCounter) add(idx uint32) bool {
	if c.counts == nil {
		if _, ok := c.subs[idx]; !ok {
			return false
		}
		c.live[idx]++
		return true
	}
	if idx < c.base || uint64(idx-c.base) >= uint64(len(c.counts)) || c.counts[idx-c.base] == 0 {
		return false
	}
	c.counts[idx-c.base]++
	return true
}

// flush writes the counts of submissions with keys into live.
func (c *liveCounter) flush(live map[uint32]uint32) {
	for idx, n := range c.live {
		live[idx] += n
	}
	for i, n := range c.counts {
		if n > 1 {
			live[c.base+uint32(i)] += n - 1
		}
	}
}

// readBatches reads the batches; for batches of older snapshots it returns
// the key bytes whose fields are filled in from the stored keys.
func readBatches(s *state, n uint64, get func(proto.Message) error) (map[*Batch][]TEK, error) {
	s.batches = make([]*Batch, 0, min(n, maxPrealloc))
	legacy := map[*Batch][]TEK{}
	for i := range n {
		var p fsmpb.Batch
		if err := get(&p); err != nil {
			return nil, fmt.Errorf("read batch %d: %w", i, err)
		}
		b, old, err := batchFromProto(&p)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
		if len(s.batches) > 0 && b.Seq <= s.batches[len(s.batches)-1].Seq {
			return nil, fmt.Errorf("batch %d: sequence %d out of order", i, b.Seq)
		}
		if len(old) > 0 {
			legacy[b] = old
		}
		s.batches = append(s.batches, b)
	}
	return legacy, nil
}

// fillLegacy gives batches of older snapshots copies of their keys.
func (s *state) fillLegacy(legacy map[*Batch][]TEK) error {
	for b, keys := range legacy {
		for _, k := range keys {
			if !s.keys.has(k) {
				return fmt.Errorf("batch %d lists unknown key %x", b.Seq, k[:4])
			}
		}
		b.Keys = s.published(keys)
	}
	return nil
}

func submissionProto(s Submission) *fsmpb.Submission {
	return &fsmpb.Submission{
		Index: s.Index, Id: s.ID[:], TimeUnix: s.TimeUnix, AppId: s.AppID, Issuer: s.Issuer,
		CertificateDigest: s.CertificateDigest, Traveler: s.Traveler, KeyCount: s.KeyCount,
		Provider: s.Provider, CodeHash: s.CodeHash,
	}
}

// readAccess reads the providers and their codes.
func readAccess(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	get := r.get
	for range hdr.GetProviders() {
		p := &fsmpb.Provider{}
		if err := get(p); err != nil {
			return fmt.Errorf("read provider: %w", err)
		}
		s.providers[p.GetId()] = p
	}
	for range hdr.GetCodes() {
		c := &fsmpb.Code{}
		if err := get(c); err != nil {
			return fmt.Errorf("read code: %w", err)
		}
		if _, ok := s.providers[c.GetProvider()]; !ok {
			return fmt.Errorf("code of unknown provider %q", c.GetProvider())
		}
		s.codes[c.GetLookup()] = c
	}
	return nil
}

func sortedCodes(m map[uint32]*fsmpb.Code) []*fsmpb.Code {
	out := make([]*fsmpb.Code, 0, len(m))
	for _, c := range m {
		out = append(out, proto.CloneOf(c))
	}
	slices.SortFunc(out, func(a, b *fsmpb.Code) int { return cmp.Compare(a.GetLookup(), b.GetLookup()) })
	return out
}

// restoreDerived sets and checks what the header carries beside records.
func (s *state) restoreDerived(hdr *fsmpb.SnapshotHeader) error {
	s.lastSeq, s.lastSealUnix = hdr.GetLastBatchSeq(), hdr.GetLastSealUnix()
	s.lastTime, s.policy = hdr.GetLastTimeUnix(), hdr.GetPolicy()
	if n := len(s.batches); n > 0 && s.batches[n-1].Seq != s.lastSeq {
		return fmt.Errorf("last batch %d, header says %d", s.batches[n-1].Seq, s.lastSeq)
	}
	for _, sub := range s.submissions {
		if sub.Index >= s.nextSubmission {
			return fmt.Errorf("submission %d beyond next number %d", sub.Index, s.nextSubmission)
		}
	}
	for _, k := range hdr.GetRevisedPending() {
		if len(k) != KeyLen {
			return errors.New("revoked pending key is not 16 bytes")
		}
		if r, ok := s.keys.find(TEK(k)); !ok || !(r.revoked || r.revised) || r.batch == 0 {
			return fmt.Errorf("revised pending key %x is not a revoked or revised published key", k[:4])
		}
		s.revisedPending = append(s.revisedPending, TEK(k))
	}
	return nil
}

// foreignList lists the kept foreign batches by origin, then sequence.
func (s *state) foreignList() []*fsmpb.ForeignBatch {
	origins := make([]string, 0, len(s.foreign))
	for o := range s.foreign {
		origins = append(origins, o)
	}
	slices.Sort(origins)
	var out []*fsmpb.ForeignBatch
	for _, o := range origins {
		out = append(out, s.foreign[o]...)
	}
	return out
}

// readFederation reads the trust store and the kept foreign batches.
func readFederation(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	get := r.get
	for range hdr.GetTrusted() {
		r := &fsmpb.TrustedRegion{}
		if err := get(r); err != nil {
			return fmt.Errorf("read trusted region: %w", err)
		}
		s.trusted[r.GetRegion()] = r
	}
	for range hdr.GetForeign() {
		fb := &fsmpb.ForeignBatch{}
		if err := get(fb); err != nil {
			return fmt.Errorf("read foreign batch: %w", err)
		}
		kept := s.foreign[fb.GetOrigin()]
		if n := len(kept); n > 0 && kept[n-1].GetSeq() >= fb.GetSeq() {
			return fmt.Errorf("foreign batch %s %d out of order", fb.GetOrigin(), fb.GetSeq())
		}
		s.foreign[fb.GetOrigin()] = append(kept, fb)
	}
	s.lastDigest = hdr.GetLastDigest()
	for _, m := range hdr.GetOriginMarks() {
		if m.GetOrigin() == "" || m.GetSeq() == 0 || s.marks[m.GetOrigin()] != nil {
			return fmt.Errorf("origin mark %q %d: empty or twice", m.GetOrigin(), m.GetSeq())
		}
		s.marks[m.GetOrigin()] = m
	}
	// Snapshots from before marks existed: the last kept batch is the mark.
	for origin, kept := range s.foreign {
		if last := kept[len(kept)-1]; last.GetSeq() > s.marks[origin].GetSeq() {
			s.marks[origin] = &fsmpb.OriginMark{Origin: origin, Seq: last.GetSeq(), Digest: last.GetDigest()}
		}
	}
	return nil
}

// sortedMarks lists the high-water marks by origin.
func sortedMarks(m map[string]*fsmpb.OriginMark) []*fsmpb.OriginMark {
	out := make([]*fsmpb.OriginMark, 0, len(m))
	for _, mark := range m {
		out = append(out, mark)
	}
	slices.SortFunc(out, func(a, b *fsmpb.OriginMark) int { return strings.Compare(a.GetOrigin(), b.GetOrigin()) })
	return out
}
