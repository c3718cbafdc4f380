// Package efgs speaks the protocol of the EU Federation Gateway Service
// (EFGS), through which the national backends of the EU exchanged keys in
// 2020-2023: its wire format (efgspb), the bytes it signs for a batch of
// keys, and the detached CMS signature over them. Another implementation
// of the gateway or of a national backend reads and checks what this
// package writes, and the other way round (TestCanonicalVectors holds it
// to the gateway's own 5,000 vectors).
package efgs

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// CanonicalBytes are the bytes EFGS signs for one key (its
// BatchSignatureUtils since PRs #153 and #159): eight fields, each in
// standard, padded base64 and each followed by '.', the last too: the key
// data, the rolling start interval number, the rolling period, the
// transmission risk level (4 bytes big-endian, two's complement), the
// visited countries joined by ',' in their order, the origin, the report
// type's number and the days since onset (4 bytes big-endian two's
// complement, not zig-zag). Text outside ASCII becomes '?', as there.
func CanonicalBytes(k *efgspb.DiagnosisKey) []byte {
	var out []byte
	field := func(b []byte) {
		out = base64.StdEncoding.AppendEncode(out, b)
		out = append(out, '.')
	}
	field(k.GetKeyData())
	field(be32(k.GetRollingStartIntervalNumber()))
	field(be32(k.GetRollingPeriod()))
	field(be32(uint32(k.GetTransmissionRiskLevel())))
	field(ascii(strings.Join(k.GetVisitedCountries(), ",")))
	field(ascii(k.GetOrigin()))
	field(be32(uint32(k.GetReportType())))
	field(be32(uint32(k.GetDaysSinceOnsetOfSymptoms())))
	return out
}

// BatchBytes are the bytes EFGS signs for a batch (PR #175): the keys'
// canonical bytes sorted by their own base64 text, byte order, and
// concatenated. The order the keys are sent in does not matter.
func BatchBytes(keys []*efgspb.DiagnosisKey) []byte {
	type entry struct{ sortKey, canonical []byte }
	entries := make([]entry, len(keys))
	for i, k := range keys {
		c := CanonicalBytes(k)
		entries[i] = entry{base64.StdEncoding.AppendEncode(nil, c), c}
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.sortKey, b.sortKey) })
	var out []byte
	for _, e := range entries {
		out = append(out, e.canonical...)
	}
	return out
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// ascii is s with every rune outside ASCII as '?'.
func ascii(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 127 {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return out
}

// SortCanonical orders keys as BatchBytes does (by the base64 text of
// their canonical bytes), so that the same keys always make the same
// upload body, and so the same tag.
func SortCanonical(keys []*efgspb.DiagnosisKey) {
	slices.SortStableFunc(keys, func(a, b *efgspb.DiagnosisKey) int {
		return bytes.Compare(base64.StdEncoding.AppendEncode(nil, CanonicalBytes(a)), base64.StdEncoding.AppendEncode(nil, CanonicalBytes(b)))
	})
}
