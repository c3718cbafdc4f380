package fsm

import (
	"errors"
	"slices"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// BatchInfo describes a sealed batch without its keys.
type BatchInfo struct {
	Seq                    uint32
	StartUnix, EndUnix     int64
	Keys, Padding, Revised int
	// Signers are the export keys its files are signed with (nil: a batch
	// sealed before they were kept).
	Signers []*fsmpb.ExportSigner
	// Signed: the replicated signatures of the files that end with it are
	// all kept (meaningful when Replicated(Signers)).
	Signed bool
}

// Batches describes the sealed batches still kept, oldest first.
func (f *FSM) Batches() []BatchInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]BatchInfo, len(f.state.batches))
	for i, b := range f.state.batches {
		out[i] = BatchInfo{Seq: b.Seq, StartUnix: b.StartUnix, EndUnix: b.EndUnix,
			Keys: len(b.Keys), Padding: len(b.Padding), Revised: len(b.Revised), Signers: b.Signers, Signed: b.Signed}
	}
	return out
}

// BatchKeys returns what a batch published: its keys with padding mixed in,
// sorted by key bytes, and its revised keys. ok is false for a batch that
// does not exist (any more).
func (f *FSM) BatchKeys(seq uint32) (keys, revised []Key, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b := f.state.batch(seq)
	if b == nil {
		return nil, nil, false
	}
	keys = make([]Key, 0, len(b.Keys)+len(b.Padding))
	keys = append(keys, b.keys()...)
	keys = append(keys, b.Padding...)
	slices.SortFunc(keys, func(a, b Key) int { return compareTEK(a.Data, b.Data) })
	return keys, slices.Clone(b.Revised), true
}

// LastBatch returns the sequence number of the newest batch ever sealed.
func (f *FSM) LastBatch() uint32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.lastSeq
}

func (s *state) batch(seq uint32) *Batch {
	i, found := slices.BinarySearchFunc(s.batches, seq, func(b *Batch, seq uint32) int { return int(b.Seq) - int(seq) })
	if !found {
		return nil
	}
	return s.batches[i]
}

func batchProto(b *Batch) *fsmpb.Batch {
	p := &fsmpb.Batch{Seq: b.Seq, StartUnix: b.StartUnix, EndUnix: b.EndUnix, Origin: b.Origin, Digest: b.Digest, PrevDigest: b.PrevDigest,
		Signers: b.Signers, Signatures: b.Signatures, Signed: b.Signed}
	for _, k := range b.keys() {
		p.SealedKeys = append(p.SealedKeys, k.Proto())
	}
	for _, k := range b.Padding {
		p.Padding = append(p.Padding, k.Proto())
	}
	for _, k := range b.Revised {
		p.Revised = append(p.Revised, k.Proto())
	}
	return p
}

// batchFromProto reads a batch; legacy lists the key bytes of a batch from
// a snapshot that kept the fields only with the stored keys, to be filled
// in once the keys are read.
func batchFromProto(p *fsmpb.Batch) (b *Batch, legacy []TEK, err error) {
	if p.GetSeq() == 0 {
		return nil, nil, errors.New("batch sequence 0")
	}
	b = &Batch{Seq: p.GetSeq(), StartUnix: p.GetStartUnix(), EndUnix: p.GetEndUnix(),
		Origin: p.GetOrigin(), Digest: p.GetDigest(), PrevDigest: p.GetPrevDigest(), Signers: p.GetSigners(),
		Signatures: p.GetSignatures(), Signed: p.GetSigned()}
	for _, k := range p.GetKeys() {
		if len(k) != KeyLen {
			return nil, nil, errors.New("batch key is not 16 bytes")
		}
		legacy = append(legacy, TEK(k))
	}
	sealed, err := keysFromProto(p.GetSealedKeys())
	if err != nil {
		return nil, nil, err
	}
	for _, k := range sealed {
		b.Keys = append(b.Keys, publishedOf(k))
	}
	if b.Padding, err = keysFromProto(p.GetPadding()); err != nil {
		return nil, nil, err
	}
	if b.Revised, err = keysFromProto(p.GetRevised()); err != nil {
		return nil, nil, err
	}
	return b, legacy, nil
}

func keysFromProto(in []*fsmpb.Key) ([]Key, error) {
	out := make([]Key, 0, len(in))
	for _, pk := range in {
		k, err := KeyFromProto(pk)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// Backlog counts the keys of the region's own uploads a batch sealed at t
// would publish if it took them all (pending keys whose validity has
// ended), and the revised keys. The leader picks the size of a batch
// padded by the day from it; keys merged from elsewhere go on top.
func (f *FSM) Backlog(t int64) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, _, own := f.state.sealable(t, 1<<30)
	return own + f.state.revisedCount()
}
