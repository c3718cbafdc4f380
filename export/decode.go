package export

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export/exportpb"
)

// Size limits on zip entries, uncompressed: a zip bomb must not exhaust
// memory. 500,000 keys take about 15 MB; 10 signatures well under 2 KB.
const (
	maxBinSize = 64 << 20
	maxSigSize = 1 << 20
)

// Decode parses export.zip strictly: exactly the entries export.bin and
// export.sig (each once), each within its size limit, export.bin starting
// with Header, both protos valid, every key 16 bytes. Errors wrap
// ErrMalformed. Signatures are not checked here: see Verify.
func Decode(data []byte) (*Decoded, error) {
	bin, sig, err := entries(data)
	if err != nil {
		return nil, err
	}
	return Open(bin, sig)
}

// entries reads export.bin and export.sig out of a zip, strictly, each
// within its size limit.
func entries(data []byte) (bin, sig []byte, err error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: not a zip: %v", ErrMalformed, err)
	}
	var haveBin, haveSig bool
	for _, zf := range zr.File {
		switch {
		case zf.Name == binName && !haveBin:
			haveBin = true
			bin, err = readEntry(zf, maxBinSize)
		case zf.Name == sigName && !haveSig:
			haveSig = true
			sig, err = readEntry(zf, maxSigSize)
		default:
			err = fmt.Errorf("%w: unexpected or repeated entry %q", ErrMalformed, zf.Name)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if !haveBin || !haveSig {
		return nil, nil, fmt.Errorf("%w: want %s and %s (have bin %t, sig %t)", ErrMalformed, binName, sigName, haveBin, haveSig)
	}
	return bin, sig, nil
}

// Open parses the two entries of an export.zip, export.bin and export.sig,
// as Decode does once it has read them: a state machine that keeps a
// file's entries, not its zip, checks them this way. Errors wrap
// ErrMalformed.
func Open(bin, sig []byte) (*Decoded, error) {
	if len(bin) > maxBinSize || len(sig) > maxSigSize {
		return nil, fmt.Errorf("%w: %s of %d bytes or %s of %d bytes is over its limit", ErrMalformed, binName, len(bin), sigName, len(sig))
	}
	d := &Decoded{Bin: bin, Sig: sig}
	if err := decodeBin(bin, &d.File); err != nil {
		return nil, err
	}
	var err error
	if d.Signatures, err = decodeSig(sig); err != nil {
		return nil, err
	}
	return d, nil
}

// readEntry reads one entry, refusing it before reading if its declared size
// is over limit, and while reading if it turns out larger.
func readEntry(zf *zip.File, limit int64) ([]byte, error) {
	if zf.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrMalformed, zf.Name, zf.UncompressedSize64, limit)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrMalformed, zf.Name, err)
	}
	defer rc.Close()
	// ReadAll reaches EOF for a small enough entry, which is where
	// archive/zip checks the CRC and the declared size.
	out, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrMalformed, zf.Name, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: %s over %d bytes", ErrMalformed, zf.Name, limit)
	}
	return out, nil
}

func decodeBin(bin []byte, f *File) error {
	if len(bin) < len(Header) || string(bin[:len(Header)]) != Header {
		return fmt.Errorf("%w: export.bin does not start with %q", ErrMalformed, Header)
	}
	var msg exportpb.TemporaryExposureKeyExport
	if err := proto.Unmarshal(bin[len(Header):], &msg); err != nil {
		return fmt.Errorf("%w: export.bin: %v", ErrMalformed, err)
	}
	start, end := msg.GetStartTimestamp(), msg.GetEndTimestamp()
	if start > math.MaxInt64 || end > math.MaxInt64 {
		return fmt.Errorf("%w: timestamps %d, %d out of range", ErrMalformed, start, end)
	}
	f.Start = time.Unix(int64(start), 0).UTC()
	f.End = time.Unix(int64(end), 0).UTC()
	f.Region = msg.GetRegion()
	f.BatchNum, f.BatchSize = msg.GetBatchNum(), msg.GetBatchSize()
	var err error
	if f.Keys, err = keysFromPB(msg.GetKeys()); err != nil {
		return err
	}
	if f.RevisedKeys, err = keysFromPB(msg.GetRevisedKeys()); err != nil {
		return err
	}
	return nil
}

// keysFromPB converts keys as written; absent fields take their wire
// defaults (rolling period 144, report type 0, no days since onset).
func keysFromPB(in []*exportpb.TemporaryExposureKey) ([]Key, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]Key, len(in))
	for i, m := range in {
		if len(m.GetKeyData()) != len(out[i].Data) {
			return nil, fmt.Errorf("%w: key %d is %d bytes, want 16", ErrMalformed, i, len(m.GetKeyData()))
		}
		k := &out[i]
		copy(k.Data[:], m.GetKeyData())
		k.RollingStart = m.GetRollingStartIntervalNumber()
		k.RollingPeriod = m.GetRollingPeriod()
		k.TransmissionRisk = m.GetTransmissionRiskLevel()
		k.ReportType = int32(m.GetReportType())
		if m.DaysSinceOnsetOfSymptoms != nil {
			k.HasDaysSinceOnset = true
			k.DaysSinceOnset = *m.DaysSinceOnsetOfSymptoms
		}
	}
	return out, nil
}

func decodeSig(sig []byte) ([]Signature, error) {
	var list exportpb.TEKSignatureList
	if err := proto.Unmarshal(sig, &list); err != nil {
		return nil, fmt.Errorf("%w: export.sig: %v", ErrMalformed, err)
	}
	out := make([]Signature, 0, len(list.GetSignatures()))
	for _, s := range list.GetSignatures() {
		info := s.GetSignatureInfo()
		out = append(out, Signature{
			KeyID:      info.GetVerificationKeyId(),
			KeyVersion: info.GetVerificationKeyVersion(),
			Algorithm:  info.GetSignatureAlgorithm(),
			BatchNum:   s.GetBatchNum(),
			BatchSize:  s.GetBatchSize(),
			DER:        s.GetSignature(),
		})
	}
	return out, nil
}
