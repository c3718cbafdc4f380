package export

import (
	"archive/zip"
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export/exportpb"
)

// Entry names inside export.zip, in the order they are written.
const (
	binName = "export.bin"
	sigName = "export.sig"
)

// Encode writes export.zip (export.bin then export.sig) deterministically:
// the same File and keys give the same bytes on every node. Keys are sorted
// by raw bytes as the reference does (ties broken by the other fields, so the
// input order never matters), rolling_period is omitted when 144, the zip
// entries are deflated with a zero modification time, and the ECDSA
// signatures use RFC 6979 (nil random source). Signatures appear in the
// order of keys. f and keys are not modified.
func Encode(f File, keys []SigningKey) ([]byte, error) {
	if err := checkFile(&f); err != nil {
		return nil, err
	}
	if err := checkSigningKeys(keys); err != nil {
		return nil, err
	}
	bin, err := marshalBin(&f, keys)
	if err != nil {
		return nil, err
	}
	sig, err := marshalSig(bin, f.BatchNum, f.BatchSize, keys)
	if err != nil {
		return nil, err
	}
	return zipEntries(bin, sig)
}

// Bin is the export.bin Encode would sign for f and keys (whose ids and
// versions it names): what a key kept elsewhere signs, once, for every
// node to serve.
func Bin(f File, keys []SigningKey) ([]byte, error) {
	if err := checkFile(&f); err != nil {
		return nil, err
	}
	if err := checkSigningKeys(keys); err != nil {
		return nil, err
	}
	return marshalBin(&f, keys)
}

func checkFile(f *File) error {
	if f.Start.Unix() < 0 || f.End.Unix() < f.Start.Unix() {
		return fmt.Errorf("export: window [%d, %d] is not a window after 1970", f.Start.Unix(), f.End.Unix())
	}
	if f.BatchNum < 1 || f.BatchNum > f.BatchSize {
		return fmt.Errorf("export: batch %d of %d", f.BatchNum, f.BatchSize)
	}
	if n := len(f.Keys) + len(f.RevisedKeys); n > MaxKeysPerFile {
		return fmt.Errorf("export: %d keys in one file, at most %d", n, MaxKeysPerFile)
	}
	for _, list := range [][]Key{f.Keys, f.RevisedKeys} {
		for i := range list {
			if err := checkKey(&list[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkKey(k *Key) error {
	switch {
	case k.RollingStart < 0:
		return fmt.Errorf("export: key %x: rolling start %d", k.Data, k.RollingStart)
	case k.RollingPeriod < 1 || k.RollingPeriod > DefaultRollingPeriod:
		return fmt.Errorf("export: key %x: rolling period %d, want 1..144", k.Data, k.RollingPeriod)
	case k.TransmissionRisk < 0 || k.TransmissionRisk > 8:
		return fmt.Errorf("export: key %x: transmission risk %d, want 0..8", k.Data, k.TransmissionRisk)
	case k.ReportType < ReportTypeUnknown || k.ReportType > ReportTypeRevoked:
		return fmt.Errorf("export: key %x: report type %d, want 0..5", k.Data, k.ReportType)
	case k.HasDaysSinceOnset && (k.DaysSinceOnset < -14 || k.DaysSinceOnset > 14):
		return fmt.Errorf("export: key %x: days since onset %d, want -14..14", k.Data, k.DaysSinceOnset)
	}
	return nil
}

func checkSigningKeys(keys []SigningKey) error {
	if len(keys) == 0 || len(keys) > MaxSigningKeys {
		return fmt.Errorf("export: %d signing keys, want 1..%d", len(keys), MaxSigningKeys)
	}
	seen := make(map[[2]string]bool, len(keys))
	for _, k := range keys {
		if pub := k.Public(); pub == nil || pub.Curve != elliptic.P256() {
			return fmt.Errorf("export: signing key %q/%q is not a P-256 key", k.KeyID, k.KeyVersion)
		}
		if k.KeyID == "" || k.KeyVersion == "" {
			return fmt.Errorf("export: signing key needs a key id and a version (got %q/%q)", k.KeyID, k.KeyVersion)
		}
		id := [2]string{k.KeyID, k.KeyVersion}
		if seen[id] {
			return fmt.Errorf("export: signing key %q/%q given twice", k.KeyID, k.KeyVersion)
		}
		seen[id] = true
	}
	return nil
}

// marshalBin returns export.bin: the header and the proto.
func marshalBin(f *File, keys []SigningKey) ([]byte, error) {
	msg := &exportpb.TemporaryExposureKeyExport{
		StartTimestamp: proto.Uint64(uint64(f.Start.Unix())),
		EndTimestamp:   proto.Uint64(uint64(f.End.Unix())),
		Region:         proto.String(f.Region),
		BatchNum:       proto.Int32(f.BatchNum),
		BatchSize:      proto.Int32(f.BatchSize),
		Keys:           keysToPB(f.Keys),
		RevisedKeys:    keysToPB(f.RevisedKeys),
	}
	for _, k := range keys {
		msg.SignatureInfos = append(msg.SignatureInfos, signatureInfo(k))
	}
	out := make([]byte, len(Header), len(Header)+proto.Size(msg))
	copy(out, Header)
	out, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(out, msg)
	if err != nil {
		return nil, fmt.Errorf("export: marshal export.bin: %w", err)
	}
	return out, nil
}

// keysToPB sorts a copy of keys and converts it. The messages and their
// optional fields live in a few large arrays: a 500,000-key file would
// otherwise cost millions of small allocations.
func keysToPB(keys []Key) []*exportpb.TemporaryExposureKey {
	if len(keys) == 0 {
		return nil
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, compareKeys)
	n := len(sorted)
	msgs := make([]exportpb.TemporaryExposureKey, n)
	out := make([]*exportpb.TemporaryExposureKey, n)
	data := make([]byte, 16*n)
	ints := make([]int32, 4*n)
	types := make([]exportpb.TemporaryExposureKey_ReportType, n)
	for i := range sorted {
		k, m := &sorted[i], &msgs[i]
		m.KeyData = data[16*i : 16*i+16 : 16*i+16]
		copy(m.KeyData, k.Data[:])
		v := ints[4*i : 4*i+4 : 4*i+4]
		v[0] = k.TransmissionRisk
		m.TransmissionRiskLevel = &v[0]
		if k.RollingStart != 0 {
			v[1] = k.RollingStart
			m.RollingStartIntervalNumber = &v[1]
		}
		if k.RollingPeriod != DefaultRollingPeriod {
			v[2] = k.RollingPeriod
			m.RollingPeriod = &v[2]
		}
		if k.HasDaysSinceOnset {
			v[3] = k.DaysSinceOnset
			m.DaysSinceOnsetOfSymptoms = &v[3]
		}
		if k.ReportType != ReportTypeUnknown {
			types[i] = exportpb.TemporaryExposureKey_ReportType(k.ReportType)
			m.ReportType = &types[i]
		}
		out[i] = m
	}
	return out
}

// compareKeys orders by raw key bytes (the reference's order), then by every
// other field, so that equal inputs in any order give equal files.
func compareKeys(a, b Key) int {
	if c := bytes.Compare(a.Data[:], b.Data[:]); c != 0 {
		return c
	}
	for _, p := range [][2]int32{
		{a.RollingStart, b.RollingStart},
		{a.RollingPeriod, b.RollingPeriod},
		{a.TransmissionRisk, b.TransmissionRisk},
		{a.ReportType, b.ReportType},
		{boolInt(a.HasDaysSinceOnset), boolInt(b.HasDaysSinceOnset)},
		{a.DaysSinceOnset, b.DaysSinceOnset},
	} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func signatureInfo(k SigningKey) *exportpb.SignatureInfo {
	return &exportpb.SignatureInfo{
		VerificationKeyVersion: proto.String(k.KeyVersion),
		VerificationKeyId:      proto.String(k.KeyID),
		SignatureAlgorithm:     proto.String(SignatureAlgorithm),
	}
}

// marshalSig returns export.sig: one signature per key, in their order.
func marshalSig(bin []byte, batchNum, batchSize int32, keys []SigningKey) ([]byte, error) {
	digest := sha256.Sum256(bin)
	list := &exportpb.TEKSignatureList{}
	for _, k := range keys {
		der, err := k.sign(digest[:])
		if err != nil {
			return nil, fmt.Errorf("export: sign with %q/%q: %w", k.KeyID, k.KeyVersion, err)
		}
		list.Signatures = append(list.Signatures, &exportpb.TEKSignature{
			SignatureInfo: signatureInfo(k),
			BatchNum:      proto.Int32(batchNum),
			BatchSize:     proto.Int32(batchSize),
			Signature:     der,
		})
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("export: marshal export.sig: %w", err)
	}
	return out, nil
}

// SignedZip is a zip of bin as export.bin and its signatures by keys as
// export.sig, as an export file's but for any content (an app
// configuration): apps verify it with VerifyBlob, as they verify exports.
func SignedZip(bin []byte, keys []SigningKey) ([]byte, error) {
	if err := checkSigningKeys(keys); err != nil {
		return nil, err
	}
	sig, err := marshalSig(bin, 1, 1, keys)
	if err != nil {
		return nil, err
	}
	return zipEntries(bin, sig)
}

// Zip makes an export.zip of its two entries as they are: a file's
// export.bin and export.sig kept apart (an import's log entry) become the
// file again.
func Zip(bin, sig []byte) ([]byte, error) { return zipEntries(bin, sig) }

// zipEntries writes the archive as the reference's zip.Writer.Create does:
// deflate, zero (1980) modification time, no extra fields.
func zipEntries(bin, sig []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(bin) + len(sig) + 512)
	zw := zip.NewWriter(&buf)
	for _, e := range []struct {
		name string
		data []byte
	}{{binName, bin}, {sigName, sig}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Deflate})
		if err != nil {
			return nil, fmt.Errorf("export: zip %s: %w", e.name, err)
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, fmt.Errorf("export: zip %s: %w", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("export: zip: %w", err)
	}
	return buf.Bytes(), nil
}
