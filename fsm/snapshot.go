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

// snapshot is a point-in-time copy of the state. Capturing it under the
// read lock copies only flat slices; sorting and encoding happen in Persist
// while Apply goes on.
type snapshot struct {
	keys           []Key
	submissions    []Submission
	authorities    []*fsmpb.Authority
	nodes          []*fsmpb.Node
	batches        []*Batch // immutable once sealed, so shared
	revocations    []*fsmpb.Revocation
	providers      []*fsmpb.Provider
	codes          []*fsmpb.Code
	trusted        []*fsmpb.TrustedRegion
	foreign        []*fsmpb.ForeignBatch // immutable once kept, so shared
	marks          []*fsmpb.OriginMark   // replaced, never changed, so shared
	verification   verificationRecords
	sessions       []*fsmpb.Session
	lastDigest     []byte
	revisedPending []TEK
	lastSeq        uint32
	lastSealUnix   int64
	nextSubmission uint32
	lastTime       int64
	policy         *fsmpb.Policy
}

func (s *state) capture() *snapshot {
	keys := make([]Key, 0, s.keys.len())
	for data, r := range s.keys.all() {
		keys = append(keys, r.key(data))
	}
	subs := make([]Submission, 0, len(s.submissions))
	for _, sub := range s.submissions {
		subs = append(subs, *sub)
	}
	return &snapshot{
		keys:           keys,
		submissions:    subs,
		authorities:    sortedClones(s.authorities),
		nodes:          sortedClones(s.nodes),
		batches:        slices.Clone(s.batches),
		revocations:    slices.Clone(s.revocations), // records are never changed
		providers:      sortedClones(s.providers),
		codes:          sortedCodes(s.codes),
		trusted:        sortedClones(s.trusted),
		foreign:        s.foreignList(),
		marks:          sortedMarks(s.marks),
		verification:   s.verificationRecords(),
		sessions:       s.sessions.list(),
		lastDigest:     s.lastDigest,
		revisedPending: slices.Clone(s.revisedPending),
		lastSeq:        s.lastSeq,
		lastSealUnix:   s.lastSealUnix,
		nextSubmission: s.nextSubmission,
		lastTime:       s.lastTime,
		policy:         proto.CloneOf(s.policy),
	}
}

// Persist writes the snapshot: a header, then authorities, nodes,
// submissions and keys, each a length-delimited protobuf message, keys
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
	slices.SortFunc(sn.keys, func(a, b Key) int { return bytes.Compare(a.Data[:], b.Data[:]) })
	slices.SortFunc(sn.submissions, func(a, b Submission) int { return cmp.Compare(a.Index, b.Index) })
	slices.SortFunc(sn.revisedPending, compareTEK)
	bw := bufio.NewWriterSize(w, 1<<20)
	put := func(m proto.Message) error {
		_, err := protodelim.MarshalTo(bw, m)
		return err
	}
	hdr := &fsmpb.SnapshotHeader{
		Version: SnapshotVersion, Authorities: uint64(len(sn.authorities)), Nodes: uint64(len(sn.nodes)),
		Submissions: uint64(len(sn.submissions)), Keys: uint64(len(sn.keys)),
		Batches: uint64(len(sn.batches)), LastBatchSeq: sn.lastSeq, LastSealUnix: sn.lastSealUnix,
		NextSubmission: sn.nextSubmission, Revocations: uint64(len(sn.revocations)),
		Providers: uint64(len(sn.providers)), Codes: uint64(len(sn.codes)),
		Trusted: uint64(len(sn.trusted)), Foreign: uint64(len(sn.foreign)), LastDigest: sn.lastDigest,
		LastTimeUnix: sn.lastTime, Policy: sn.policy, OriginMarks: sn.marks,
		ApiKeys: uint64(len(sn.verification.apiKeys)), VerificationCodes: uint64(len(sn.verification.codes)),
		VerificationTokens: uint64(len(sn.verification.tokens)), Users: uint64(len(sn.verification.users)),
		AuditEvents: uint64(len(sn.verification.audit)), Sessions: uint64(len(sn.sessions)),
	}
	for _, k := range sn.revisedPending {
		hdr.RevisedPending = append(hdr.RevisedPending, k[:])
	}
	if err := put(hdr); err != nil {
		return err
	}
	for _, a := range sn.authorities {
		if err := put(a); err != nil {
			return err
		}
	}
	for _, n := range sn.nodes {
		if err := put(n); err != nil {
			return err
		}
	}
	for _, s := range sn.submissions {
		if err := put(submissionProto(s)); err != nil {
			return err
		}
	}
	for _, b := range sn.batches {
		if err := put(batchProto(b)); err != nil {
			return err
		}
	}
	var rec fsmpb.StoredKey
	for _, k := range sn.keys {
		rec.Key, rec.Submission, rec.Batch, rec.Revoked, rec.Revised = k.Proto(), k.Submission, k.Batch, k.Revoked, k.Revised
		if err := put(&rec); err != nil {
			return err
		}
	}
	for _, r := range sn.revocations {
		if err := put(r); err != nil {
			return err
		}
	}
	for _, p := range sn.providers {
		if err := put(p); err != nil {
			return err
		}
	}
	for _, c := range sn.codes {
		if err := put(c); err != nil {
			return err
		}
	}
	for _, r := range sn.trusted {
		if err := put(r); err != nil {
			return err
		}
	}
	for _, fb := range sn.foreign {
		if err := put(fb); err != nil {
			return err
		}
	}
	if err := sn.verification.write(put); err != nil {
		return err
	}
	for _, e := range sn.sessions {
		if err := put(e); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// maxPrealloc bounds the room reserved from the header's counts: a corrupted
// count must fail on the missing records, not exhaust memory (a huge count
// made make() throw a fatal, unrecoverable out-of-memory error).
const maxPrealloc = 1 << 22

// maxRecordBytes bounds one record of a snapshot. A batch record holds all
// its keys (about 32 bytes each): large batches fit, and a corrupted length
// still cannot claim more.
const maxRecordBytes = 1 << 30

// readSnapshot decodes what write wrote, checking every record.
func readSnapshot(r io.Reader) (*state, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	opts := protodelim.UnmarshalOptions{MaxSize: maxRecordBytes}
	get := func(m proto.Message) error { return opts.UnmarshalFrom(br, m) }
	var hdr fsmpb.SnapshotHeader
	if err := get(&hdr); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if hdr.GetVersion() == 0 || hdr.GetVersion() > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d, this build reads 1..%d", hdr.GetVersion(), SnapshotVersion)
	}
	s := newState()
	for range hdr.GetAuthorities() {
		a := &fsmpb.Authority{}
		if err := get(a); err != nil {
			return nil, fmt.Errorf("read authority: %w", err)
		}
		s.authorities[a.GetIssuer()] = a
	}
	for range hdr.GetNodes() {
		n := &fsmpb.Node{}
		if err := get(n); err != nil {
			return nil, fmt.Errorf("read node: %w", err)
		}
		s.nodes[n.GetId()] = n
	}
	if err := readSubmissions(s, &hdr, get); err != nil {
		return nil, err
	}
	legacy, err := readBatches(s, hdr.GetBatches(), get)
	if err != nil {
		return nil, err
	}
	if err := readKeys(s, hdr.GetKeys(), br); err != nil {
		return nil, err
	}
	if err := s.fillLegacy(legacy); err != nil {
		return nil, err
	}
	for range hdr.GetRevocations() {
		r := &fsmpb.Revocation{}
		if err := get(r); err != nil {
			return nil, fmt.Errorf("read revocation: %w", err)
		}
		s.revocations = append(s.revocations, r)
	}
	if err := readAccess(s, &hdr, get); err != nil {
		return nil, err
	}
	if err := readFederation(s, &hdr, get); err != nil {
		return nil, err
	}
	if err := readVerification(s, &hdr, get); err != nil {
		return nil, err
	}
	if err := readSessions(s, hdr.GetSessions(), get); err != nil {
		return nil, err
	}
	if err := s.restoreDerived(&hdr); err != nil {
		return nil, err
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the last record")
	}
	return s, nil
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
func readAccess(s *state, hdr *fsmpb.SnapshotHeader, get func(proto.Message) error) error {
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
func readFederation(s *state, hdr *fsmpb.SnapshotHeader, get func(proto.Message) error) error {
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
