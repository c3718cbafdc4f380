package fsm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// FederationVersion is the version of the federation batch body.
const FederationVersion = 1

// FederationDomain prefixes the signed bytes, so that a federation
// signature can never be taken for a signature over anything else.
const FederationDomain = "covid-backend federation batch v1\x00"

// FederationDomainV2 prefixes the bytes of signature_v2, which also cover
// the batch's export.sig.
const FederationDomainV2 = "covid-backend federation batch v2\x00"

// SignedMessageV2 is what signature_v2 signs: the domain, the body's
// length, the body and the export.sig (the length keeps the two apart).
func SignedMessageV2(body, exportSig []byte) []byte {
	msg := make([]byte, 0, len(FederationDomainV2)+4+len(body)+len(exportSig))
	msg = append(msg, FederationDomainV2...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(body)))
	msg = append(append(msg, body...), exportSig...)
	return msg
}

// versionExportSigBound is the command version from which an import needs
// signature_v2 and is placed against the origin's high-water mark.
const versionExportSigBound = 3

var errNotEd25519 = errors.New("not an Ed25519 public key")

// federationBody is the canonical body of an own batch: everything under
// the region's signature, keys and revised keys sorted.
func federationBody(origin string, b *Batch) *fsmpb.FederationBatch {
	body := &fsmpb.FederationBatch{Version: FederationVersion, Origin: origin, Seq: b.Seq,
		PrevDigest: b.PrevDigest, StartUnix: b.StartUnix, EndUnix: b.EndUnix}
	keys := append(b.keys(), b.Padding...)
	slices.SortFunc(keys, func(x, y Key) int { return compareTEK(x.Data, y.Data) })
	for _, k := range keys {
		body.Keys = append(body.Keys, k.Proto())
	}
	for _, k := range b.Revised {
		body.Revised = append(body.Revised, k.Proto())
	}
	return body
}

// encodeBody is the deterministic encoding that is signed and digested.
func encodeBody(body *fsmpb.FederationBatch) []byte {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		panic("fsm: encode federation body: " + err.Error()) // only valid fields are set
	}
	return data
}

// chain sets a new own batch's place in its region's chain.
func (s *state) chain(origin string, b *Batch) {
	b.Origin, b.PrevDigest = origin, s.lastDigest
	sum := sha256.Sum256(encodeBody(federationBody(origin, b)))
	b.Digest = sum[:]
	s.lastDigest = b.Digest
}

// FederationBody returns the encoded federation body of an own batch, for
// the region's signer: every node encodes it to the same bytes.
func (f *FSM) FederationBody(seq uint32) ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b := f.state.batch(seq)
	if b == nil || b.Origin == "" {
		return nil, false
	}
	return encodeBody(federationBody(b.Origin, b)), true
}

// applyImportBatch keeps a signed batch of a trusted region, as received,
// after checking the signature with the region's keys and the chain of
// the origin (see checkChain). The same batch again is a no-op; other
// content under a kept sequence number is refused.
func applyImportBatch(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	raw := cmd.GetImportBatch().GetSigned()
	body, sb, digest, resp := s.verifyForeign(raw, cmd.GetVersion())
	if resp == nil {
		resp = s.checkChain(body, digest, cmd.GetVersion())
	}
	if resp != nil {
		return resp
	}
	origin := body.GetOrigin()
	s.foreign[origin] = append(s.foreign[origin], &fsmpb.ForeignBatch{
		Origin: origin, Seq: body.GetSeq(), Digest: digest, EndUnix: body.GetEndUnix(), Signed: bytes.Clone(raw),
		StartUnix: body.GetStartUnix(), HasExportSig: len(sb.GetExportSig()) > 0,
	})
	if body.GetSeq() > s.marks[origin].GetSeq() {
		s.marks[origin] = &fsmpb.OriginMark{Origin: origin, Seq: body.GetSeq(), Digest: digest}
	}
	res := &fsmpb.ImportResult{Origin: origin, Seq: body.GetSeq()}
	if s.trusted[origin].GetMerge() {
		res.Merged, res.Revoked = s.merge(body, digest, cmd.GetTimeUnix(), cmd.GetVersion() >= command.GAENImport)
	}
	return &fsmpb.Result{Value: &fsmpb.Result_Import{Import: res}}
}

// checkChain places a verified batch in its origin's chain: the same batch
// again is a duplicate (answered as such), other content under a kept
// sequence is refused, and so is a batch that does not follow the last
// kept one. From command version 3, a batch at or below the origin's
// high-water mark is a replay, and the first batch kept after a gap (all
// expired, or a late trust add) follows the mark and the trusted start.
// Nil: the batch is new and follows.
func (s *state) checkChain(body *fsmpb.FederationBatch, digest []byte, version uint32) *fsmpb.Result {
	origin, seq := body.GetOrigin(), body.GetSeq()
	kept := s.foreign[origin]
	if i := slices.IndexFunc(kept, func(fb *fsmpb.ForeignBatch) bool { return fb.GetSeq() == seq }); i >= 0 {
		if bytes.Equal(kept[i].GetDigest(), digest) {
			return &fsmpb.Result{Value: &fsmpb.Result_Import{Import: &fsmpb.ImportResult{Origin: origin, Seq: seq, Duplicate: true}}}
		}
		return refuse(command.CodeBatchConflict, "%s batch %d is kept with other content", origin, seq)
	}
	if version >= versionExportSigBound {
		if res := s.checkMark(body); res != nil {
			return res
		}
	}
	if n := len(kept); n > 0 {
		last := kept[n-1]
		if seq != last.GetSeq()+1 || !bytes.Equal(body.GetPrevDigest(), last.GetDigest()) {
			return refuse(command.CodeBrokenChain, "%s batch %d does not follow batch %d", origin, seq, last.GetSeq())
		}
	}
	return nil
}

// checkMark refuses a batch at or below its origin's high-water mark, one
// right after the mark that does not chain to it, and, when none of the
// origin's batches is kept, one below the trusted start sequence.
func (s *state) checkMark(body *fsmpb.FederationBatch) *fsmpb.Result {
	origin, seq := body.GetOrigin(), body.GetSeq()
	m := s.marks[origin]
	switch {
	case seq <= m.GetSeq():
		return refuse(command.CodeReplayedBatch, "%s batch %d is at or below the newest batch this region kept of it (%d)", origin, seq, m.GetSeq())
	case m != nil && seq == m.GetSeq()+1 && !bytes.Equal(body.GetPrevDigest(), m.GetDigest()):
		return refuse(command.CodeBrokenChain, "%s batch %d does not follow batch %d", origin, seq, m.GetSeq())
	case len(s.foreign[origin]) == 0 && seq < s.trusted[origin].GetStartSeq():
		return refuse(command.CodeBeforeStart, "%s batches are kept from %d on, not %d", origin, s.trusted[origin].GetStartSeq(), seq)
	}
	return nil
}

// CheckImport tells, without changing anything, what importing a signed
// batch under a command version would do: its origin and sequence,
// whether it is kept already, or the refusal the state machine would
// give. The federation puller checks every fetched batch so, before it
// proposes the import, so that the raft log does not carry bytes the
// state machine refuses.
func (f *FSM) CheckImport(raw []byte, version uint32) (origin string, seq uint32, duplicate bool, refused *command.Error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	body, _, digest, res := f.state.verifyForeign(raw, version)
	if res == nil {
		res = f.state.checkChain(body, digest, version)
	}
	if r := res.GetRefusal(); r != nil {
		return "", 0, false, &command.Error{Code: command.Code(r.GetCode()), Message: r.GetMessage()}
	}
	return body.GetOrigin(), body.GetSeq(), res.GetImport().GetDuplicate(), nil
}

// NextForeign is the next sequence of origin to import: the one after the
// last kept (chained), or, when none is kept, the first above the
// high-water mark and not below the trusted start.
func (f *FSM) NextForeign(origin string) (next uint32, chained bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if kept := f.state.foreign[origin]; len(kept) > 0 {
		return kept[len(kept)-1].GetSeq() + 1, true
	}
	return max(f.state.marks[origin].GetSeq()+1, f.state.trusted[origin].GetStartSeq()), false
}

// merge takes a foreign batch's keys into this region's own key set (the
// "one EU" pattern), as one submission authorized by the origin.
func (s *state) merge(body *fsmpb.FederationBatch, digest []byte, now int64, once bool) (merged, revoked uint32) {
	keys, _ := keysFromProto(body.GetKeys())
	revisions, _ := keysFromProto(body.GetRevised())
	if !once {
		return s.mergeKeysAsBefore("federation:"+body.GetOrigin(), [16]byte(digest[:16]), keys, revisions, now)
	}
	return s.mergeKeys("federation:"+body.GetOrigin(), [16]byte(digest[:16]), keys, revisions, now)
}

// mergeKeysAsBefore is mergeKeys as versions before 7 applied it, which
// took a key given twice in one batch twice (no build of this project
// signs such a batch); kept so that old logs apply as they did.
func (s *state) mergeKeysAsBefore(issuer string, id [16]byte, keys, revisions []Key, now int64) (merged, revoked uint32) {
	return s.mergeDistinct(issuer, id, slices.DeleteFunc(keys, func(k Key) bool { return s.keys.has(k.Data) }), revisions, now)
}

// mergeKeys takes an origin's keys into this region's own key set, as one
// submission (id) authorized by issuer at time now, so that they are
// sealed into this region's next batch and exports; keys the origin
// revoked (revisions of report type REVOKED) are revoked here too. Keys
// already stored, and a key given twice, are taken once, and only the
// issuer's own keys are revoked.
func (s *state) mergeKeys(issuer string, id [16]byte, keys, revisions []Key, now int64) (merged, revoked uint32) {
	seen := make(map[TEK]bool, len(keys))
	keys = slices.DeleteFunc(keys, func(k Key) bool {
		again := seen[k.Data] || s.keys.has(k.Data)
		seen[k.Data] = true
		return again
	})
	return s.mergeDistinct(issuer, id, keys, revisions, now)
}

// mergeDistinct stores keys none of which the state holds, as one
// submission, and applies the revisions.
func (s *state) mergeDistinct(issuer string, id [16]byte, keys, revisions []Key, now int64) (merged, revoked uint32) {
	if len(keys) > 0 {
		idx := s.nextSubmission
		s.nextSubmission++
		s.submissions[idx] = &Submission{Index: idx, ID: id, TimeUnix: now, Issuer: issuer, KeyCount: uint32(len(keys))}
		s.submissionIdx[id] = idx
		s.live[idx] = uint32(len(keys))
		for _, k := range keys {
			k.Submission = idx
			s.keys.set(k.Data, k.record())
			s.pending = append(s.pending, k.Data)
		}
	}
	for _, k := range revisions {
		r, ok := s.keys.find(k.Data)
		if !ok || r.revoked || k.ReportType != ReportTypeRevoked || s.submissions[r.submission].Issuer != issuer {
			continue
		}
		r.revoked = true
		s.keys.set(k.Data, r)
		if r.batch != 0 {
			s.revisedPending = append(s.revisedPending, k.Data)
		}
		revoked++
	}
	return uint32(len(keys)), revoked
}

// verifyForeign decodes a signed batch and checks it against the trust
// store (signature_v2 from command version 3, signature before); it
// changes nothing.
func (s *state) verifyForeign(raw []byte, version uint32) (*fsmpb.FederationBatch, *fsmpb.SignedBatch, []byte, *fsmpb.Result) {
	fail := func(code command.Code, format string, args ...any) (*fsmpb.FederationBatch, *fsmpb.SignedBatch, []byte, *fsmpb.Result) {
		r := refuse(code, format, args...)
		return nil, nil, nil, r
	}
	var sb fsmpb.SignedBatch
	var body fsmpb.FederationBatch
	if proto.Unmarshal(raw, &sb) != nil || proto.Unmarshal(sb.GetBody(), &body) != nil {
		return fail(command.CodeBadBatch, "batch does not decode")
	}
	if body.GetVersion() != FederationVersion || body.GetSeq() == 0 {
		return fail(command.CodeBadBatch, "batch version %d, sequence %d", body.GetVersion(), body.GetSeq())
	}
	region, ok := s.trusted[body.GetOrigin()]
	if !ok || region.GetKind() != "" || !region.GetServe() && !region.GetMerge() {
		return fail(command.CodeUnknownRegion, "origin %q is not trusted", body.GetOrigin())
	}
	i := slices.IndexFunc(region.GetKeys(), func(k *fsmpb.TrustKey) bool { return k.GetId() == sb.GetKeyId() })
	if i < 0 {
		return fail(command.CodeBadSignature, "origin %q has no key %q", body.GetOrigin(), sb.GetKeyId())
	}
	pub, err := parseEd25519(region.GetKeys()[i].GetPublicKeyDer())
	msg, sig := append([]byte(FederationDomain), sb.GetBody()...), sb.GetSignature()
	if version >= versionExportSigBound {
		msg, sig = SignedMessageV2(sb.GetBody(), sb.GetExportSig()), sb.GetSignatureV2()
	}
	if err != nil || !ed25519.Verify(pub, msg, sig) {
		return fail(command.CodeBadSignature, "signature of %s batch %d does not verify", body.GetOrigin(), body.GetSeq())
	}
	if _, err := keysFromProto(append(slices.Clone(body.GetKeys()), body.GetRevised()...)); err != nil {
		return fail(command.CodeBadBatch, "%s batch %d: %v", body.GetOrigin(), body.GetSeq(), err)
	}
	sum := sha256.Sum256(sb.GetBody())
	return &body, &sb, sum[:], nil
}

// ForeignBatches returns the kept batches of an origin (without their
// bytes), oldest first.
func (f *FSM) ForeignBatches(origin string) []*fsmpb.ForeignBatch {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*fsmpb.ForeignBatch, 0, len(f.state.foreign[origin]))
	for _, fb := range f.state.foreign[origin] {
		out = append(out, &fsmpb.ForeignBatch{Origin: fb.GetOrigin(), Seq: fb.GetSeq(), Digest: fb.GetDigest(),
			StartUnix: fb.GetStartUnix(), EndUnix: fb.GetEndUnix(), HasExportSig: fb.GetHasExportSig()})
	}
	return out
}

// ForeignSigned returns a kept foreign batch exactly as received.
func (f *FSM) ForeignSigned(origin string, seq uint32) ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, fb := range f.state.foreign[origin] {
		if fb.GetSeq() == seq {
			return fb.GetSigned(), true
		}
	}
	return nil, false
}

// OwnChain returns the first and last own batch still kept and the digest
// of the last, for announcing them to other regions.
func (f *FSM) OwnChain() (first, last uint32, digest []byte) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, b := range f.state.batches {
		if b.Origin == "" {
			continue
		}
		if first == 0 {
			first = b.Seq
		}
		last, digest = b.Seq, b.Digest
	}
	return first, last, digest
}
