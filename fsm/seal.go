package fsm

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// ReportTypeRevoked is the GAEN report type of a withdrawn key.
const ReportTypeRevoked = 5

// intervalSeconds is the length of a GAEN rolling interval.
const intervalSeconds = 600

// Batch is a sealed, immutable batch of keys: what one export file and one
// step of the delta feed carry.
type Batch struct {
	Seq       uint32
	StartUnix int64
	EndUnix   int64
	// Keys are the accepted keys the batch published, as published (a later
	// revision shows in a later batch's Revised), sorted; compact, since
	// every sealed key has a copy here.
	Keys []PublishedKey
	// Padding are random keys that hide how few keys were uploaded.
	Padding []Key
	// Revised are keys of earlier batches withdrawn or revised since, with
	// their new report type (REVOKED for a withdrawn key).
	Revised []Key
	// Origin, Digest and PrevDigest place the batch in its region's
	// federation chain (empty when sealed without an origin).
	Origin             string
	Digest, PrevDigest []byte
	// Signers are the export keys in force when it was sealed; shared
	// read-only messages.
	Signers []*fsmpb.ExportSigner
	// Signatures are the replicated signatures of the files that end with
	// the batch, by its signers that have a public key (SIGN_FILES), and
	// Signed tells they are complete; shared read-only messages.
	Signatures []*fsmpb.FileSignature
	Signed     bool
}

// Replicated tells whether some signer's signatures come from the state
// (a key in an HSM) rather than from each node.
func Replicated(signers []*fsmpb.ExportSigner) bool {
	return slices.ContainsFunc(signers, func(sg *fsmpb.ExportSigner) bool { return len(sg.GetPublicKey()) > 0 })
}

// applySeal closes the next batch. A key is published only once its
// validity has ended (GAEN: a still-valid key must not be published).
func applySeal(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	sl := cmd.GetSeal()
	if sl.GetSeq() != s.lastSeq+1 {
		return refuse(command.CodeStaleSeal, "seal of batch %d, next is %d", sl.GetSeq(), s.lastSeq+1)
	}
	fixed := cmd.GetVersion() >= command.DayPadding && sl.GetFixedSize() && sl.GetTargetKeys() > 0
	room := -1 // own keys the batch takes; -1: all
	if fixed {
		room = max(0, int(sl.GetTargetKeys())-s.revisedCount())
	}
	eligible, waiting, own := s.sealable(cmd.GetTimeUnix(), room)
	var templates []Key // the keys whose other fields padding copies
	switch {
	case len(eligible) > 0:
		templates = s.keysOf(eligible)
	case fixed && !s.windingDown(cmd.GetTimeUnix()):
		templates = s.recentKeys(cmd.GetTimeUnix())
	}
	if len(eligible) == 0 && len(s.revisedPending) == 0 && len(templates) == 0 {
		return refuse(command.CodeNothingToSeal, "no key has expired and none was revoked since batch %d", s.lastSeq)
	}
	// Windows end strictly later than the previous one, so that no two
	// batches share a file name even when sealed within one second.
	end := max(cmd.GetTimeUnix(), s.lastSealUnix+1)
	b := &Batch{Seq: sl.GetSeq(), StartUnix: s.batchStart(eligible, end), EndUnix: end, Keys: s.published(eligible)}
	b.Revised = s.revised()
	if n := int(sl.GetTargetKeys()) - len(eligible); len(templates) > 0 {
		if fixed { // keys from elsewhere come on top: their count is public
			n = int(sl.GetTargetKeys()) - own - len(b.Revised)
		}
		b.Padding = s.padding(templates, n, sl.GetPadding(), sl.GetPaddingPicks())
	}
	if cmd.GetVersion() >= 2 {
		b.Signers = cloneSigners(sl.GetSigners(), cmd.GetVersion() >= command.EndOfService)
	}
	if sl.GetOrigin() != "" {
		s.chain(sl.GetOrigin(), b)
	}
	for _, k := range eligible {
		r := s.keys.at(k)
		r.batch = b.Seq
		s.keys.set(k, r)
	}
	s.pending = waiting
	s.batches = append(s.batches, b)
	s.lastSeq, s.lastSealUnix = b.Seq, b.EndUnix
	return &fsmpb.Result{Value: &fsmpb.Result_Seal{Seal: &fsmpb.SealResult{Seq: b.Seq, Keys: uint32(len(b.Keys)), Padding: uint32(len(b.Padding)), Revised: uint32(len(b.Revised))}}}
}

// sealable splits the pending keys at time t into those a batch publishes,
// sorted, and those that wait: the keys whose validity has ended, of which
// at most room (-1: all) of the region's own uploads, oldest upload first;
// own is how many of those it takes. Keys merged from elsewhere (another
// region, a GAEN source, the EU gateway) always go: their origin published
// them already. The order comes from the replicated upload numbers, since
// the pending list of a node restored from a snapshot is in key order.
func (s *state) sealable(t int64, room int) (eligible, waiting []TEK, own int) {
	nowInterval := int32(t / intervalSeconds)
	var mine []TEK
	for _, k := range s.pending {
		switch r := s.keys.at(k); {
		case r.revoked: // withdrawn before publication: never published
		case r.start+int32(r.period) > nowInterval:
			waiting = append(waiting, k)
		case room >= 0 && s.ownKey(r):
			mine = append(mine, k)
		default:
			eligible = append(eligible, k)
		}
	}
	if room >= 0 && len(mine) > room {
		slices.SortFunc(mine, func(a, b TEK) int {
			return cmp.Or(cmp.Compare(s.keys.at(a).submission, s.keys.at(b).submission), compareTEK(a, b))
		})
		waiting, mine = append(waiting, mine[room:]...), mine[:room]
	}
	eligible = append(eligible, mine...)
	slices.SortFunc(eligible, compareTEK)
	return eligible, waiting, len(mine)
}

// ownKey tells a key this region's apps uploaded from one merged from
// elsewhere.
func (s *state) ownKey(r keyRecord) bool {
	sub := s.submissions[r.submission]
	return sub == nil || ownIssuer(sub.Issuer)
}

// revisedCount is how many keys the next batch revises.
func (s *state) revisedCount() int {
	return len(slices.Compact(slices.SortedFunc(slices.Values(s.revisedPending), compareTEK)))
}

// keysOf expands pending keys.
func (s *state) keysOf(teks []TEK) []Key {
	out := make([]Key, len(teks))
	for i, k := range teks {
		out[i] = s.keys.at(k).key(k)
	}
	return out
}

// recentKeys are the keys of the newest batch that has any, for a batch of
// padding alone to copy the fields of, moved by whole days so that the
// newest starts the day before t: as fresh as an upload's (none in a
// region that published no key within retention).
func (s *state) recentKeys(t int64) []Key {
	for i := len(s.batches) - 1; i >= 0; i-- {
		b := s.batches[i]
		if len(b.Keys) == 0 {
			continue
		}
		keys := b.keys()
		newest := slices.MaxFunc(keys, func(x, y Key) int { return cmp.Compare(x.RollingStart, y.RollingStart) }).RollingStart
		yesterday := (int32(t/intervalSeconds)/daySlots - 1) * daySlots
		shift := max(0, (yesterday-newest)/daySlots*daySlots)
		for j := range keys {
			keys[j].RollingStart += shift
		}
		return keys
	}
	return nil
}

// daySlots is the rolling intervals of a day.
const daySlots = 144

// revised turns the published keys revoked or revised since the last batch
// into revised keys with their new report type (REVOKED for a withdrawn
// key), and clears them.
func (s *state) revised() []Key {
	slices.SortFunc(s.revisedPending, compareTEK)
	out := make([]Key, 0, len(s.revisedPending))
	for _, k := range slices.Compact(s.revisedPending) {
		key := s.keys.at(k).key(k)
		if key.Revoked {
			key.ReportType = ReportTypeRevoked
		}
		key.Submission, key.Batch, key.Revoked, key.Revised = 0, 0, false, false
		out = append(out, key)
	}
	s.revisedPending = nil
	return out
}

// PublishedKey is a key as a batch published it: 24 bytes, since every
// sealed key has one (BenchmarkMemoryPerKey). Whether the key has days
// since onset is the high bit of riskOnset, beside the transmission risk
// (0..8, as newKey checks).
type PublishedKey struct {
	Data      TEK
	start     int32
	period    uint8
	riskOnset uint8
	report    uint8
	onset     int8
}

const hasOnsetBit = 0x80

func publishedOf(k Key) PublishedKey {
	p := PublishedKey{Data: k.Data, start: k.RollingStart, period: uint8(k.RollingPeriod), riskOnset: uint8(k.TransmissionRisk),
		report: uint8(k.ReportType), onset: int8(k.DaysSinceOnset)}
	if k.HasDaysSinceOnset {
		p.riskOnset |= hasOnsetBit
	}
	return p
}

// key expands a published key of batch seq.
func (p PublishedKey) key(seq uint32) Key {
	return Key{Data: p.Data, RollingStart: p.start, RollingPeriod: int32(p.period), TransmissionRisk: int32(p.riskOnset &^ hasOnsetBit),
		ReportType: int32(p.report), DaysSinceOnset: int32(p.onset), HasDaysSinceOnset: p.riskOnset&hasOnsetBit != 0, Batch: seq}
}

// published copies the keys as batch seq publishes them.
func (s *state) published(keys []TEK) []PublishedKey {
	out := make([]PublishedKey, len(keys))
	for i, k := range keys {
		out[i] = publishedOf(s.keys.at(k).key(k))
	}
	return out
}

// keys expands the batch's own keys.
func (b *Batch) keys() []Key {
	out := make([]Key, len(b.Keys))
	for i, p := range b.Keys {
		out[i] = p.key(b.Seq)
	}
	return out
}

// batchStart is where the new batch's window begins: where the previous
// one ended, or for the first batch the arrival of its oldest key.
func (s *state) batchStart(keys []TEK, end int64) int64 {
	if s.lastSealUnix != 0 {
		return s.lastSealUnix
	}
	start := end
	for _, k := range keys {
		if t := s.submissions[s.keys.at(k).submission].TimeUnix; t < start {
			start = t
		}
	}
	return start
}

// padding turns up to n of the leader's random keys into padding keys that
// copy the other fields of the template keys (the batch's real keys), so
// that padding cannot be told from real keys: the template the leader
// picked for each (at random), or, for commands without picks, the
// templates round robin as the GAEN reference does (which lets group sizes
// by metadata give the real count away).
func (s *state) padding(templates []Key, n int, random [][]byte, picks []uint32) []Key {
	var out []Key
	seen := make(map[TEK]bool, max(n, 0))
	for _, data := range random {
		if len(out) >= n {
			break
		}
		if len(data) != KeyLen {
			continue
		}
		tek := TEK(data)
		if s.keys.has(tek) || seen[tek] {
			continue
		}
		seen[tek] = true
		pick := len(out) % len(templates)
		if len(out) < len(picks) {
			pick = int(picks[len(out)] % uint32(len(templates)))
		}
		k := templates[pick]
		k.Data, k.Submission, k.Batch = tek, 0, 0
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Key) int { return compareTEK(a.Data, b.Data) })
	return out
}

func compareTEK(a, b TEK) int { return bytes.Compare(a[:], b[:]) }

// cloneSigners copies a seal's signers; their public keys (replicated
// signatures) only from version 8, which knows them.
func cloneSigners(in []*fsmpb.ExportSigner, publicKeys bool) []*fsmpb.ExportSigner {
	if len(in) == 0 {
		return nil
	}
	out := make([]*fsmpb.ExportSigner, len(in))
	for i, sg := range in {
		out[i] = &fsmpb.ExportSigner{KeyId: sg.GetKeyId(), KeyVersion: sg.GetKeyVersion()}
		if publicKeys {
			out[i].PublicKey = slices.Clone(sg.GetPublicKey())
		}
	}
	return out
}
