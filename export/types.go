package export

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"time"
)

// Header starts every export.bin; devices reject a file without it.
const Header = "EK Export v1    "

// SignatureAlgorithm is the OID written in every SignatureInfo: ECDSA with
// SHA-256, the only algorithm the devices accept for P-256 keys.
const SignatureAlgorithm = "1.2.840.10045.4.3.2"

// DefaultRollingPeriod is the rolling period the wire format assumes when the
// field is absent; writers omit it for such keys to save space.
const DefaultRollingPeriod = 144

// MaxKeysPerFile bounds Keys+RevisedKeys of one file, as the reference does:
// devices cope with about 750,000 keys, so split larger windows.
const MaxKeysPerFile = 500_000

// MaxSigningKeys bounds the signatures of one file; devices read at most 10.
const MaxSigningKeys = 10

// Report types as they appear on the wire (TemporaryExposureKey.ReportType),
// so callers can fill Key.ReportType without importing exportpb.
const (
	ReportTypeUnknown           = 0 // not set: older clients, padding keys
	ReportTypeConfirmedTest     = 1 // publish "confirmed"
	ReportTypeConfirmedClinical = 2 // publish "likely"
	ReportTypeSelfReport        = 3 // publish "user-report"
	ReportTypeRecursive         = 4 // not used by the reference server
	ReportTypeRevoked           = 5 // publish "negative": withdraws a key
)

// Errors callers can test with errors.Is, to tell a bad file from a bad
// signature from a missing one.
var (
	// ErrMalformed wraps every reason Decode rejects its input.
	ErrMalformed = errors.New("export: malformed export file")
	// ErrNoSignature means export.sig has no signature by the asked key.
	ErrNoSignature = errors.New("export: no signature for key")
	// ErrBadSignature means the key's signature does not verify.
	ErrBadSignature = errors.New("export: signature does not verify")
)

// Key is one key of an export file.
type Key struct {
	// Data is the temporary exposure key.
	Data [16]byte
	// RollingStart is the 10-minute interval number the key starts at.
	RollingStart int32
	// RollingPeriod is the key's validity in 10-minute intervals (1..144).
	RollingPeriod int32
	// TransmissionRisk is the deprecated risk level (0..8), still written
	// because older devices read it.
	TransmissionRisk int32
	// ReportType is the wire report type (ReportType* constants).
	ReportType int32
	// DaysSinceOnset is meaningful only when HasDaysSinceOnset is set.
	DaysSinceOnset int32
	// HasDaysSinceOnset tells whether the field is present: 0 days is a
	// real value, distinct from "unknown".
	HasDaysSinceOnset bool
}

// File is the content of one export.bin.
type File struct {
	// Start and End bound the server arrival times of the keys (whole
	// seconds). For a window split over several files, End is bumped by the
	// file number, because Android de-duplicates on (start, end, batch num).
	Start, End time.Time
	// Region is the region the keys came from.
	Region string
	// BatchNum and BatchSize: file BatchNum of BatchSize, 1-based. The
	// reference writes 1 of 1 on every file (iOS needs it).
	BatchNum, BatchSize int32
	// Keys are released for the first time; RevisedKeys changed report type
	// (REVOKED for a withdrawn key) in this window.
	Keys, RevisedKeys []Key
}

// SigningKey signs exports; several at once for rotation (all signatures go
// in export.sig, in the order given: newest key first).
type SigningKey struct {
	// Private is a P-256 key held here: its signatures are deterministic
	// (RFC 6979), so every node that holds it signs a file with the same
	// bytes.
	Private *ecdsa.PrivateKey
	// Signer signs when Private is nil: a P-256 key in an HSM, whose
	// signatures differ each time, or the signatures a region made once
	// and replicated (package feed).
	Signer crypto.Signer
	// KeyID and KeyVersion are what devices look the public key up by.
	KeyID, KeyVersion string
}

// Public is the key's public half (nil when it has none, or is not
// ECDSA).
func (k SigningKey) Public() *ecdsa.PublicKey {
	if k.Private != nil {
		return &k.Private.PublicKey
	}
	if k.Signer != nil {
		pub, _ := k.Signer.Public().(*ecdsa.PublicKey)
		return pub
	}
	return nil
}

// sign signs a SHA-256 digest: deterministically with Private, else
// through Signer.
func (k SigningKey) sign(digest []byte) ([]byte, error) {
	if k.Private != nil {
		return k.Private.Sign(nil, digest, crypto.SHA256) // a nil random source: RFC 6979
	}
	return k.Signer.Sign(rand.Reader, digest, crypto.SHA256)
}

// Decoded is a parsed export.zip.
type Decoded struct {
	// File is the decoded content of export.bin.
	File File
	// Bin is export.bin as stored (header included): what was signed.
	Bin []byte
	// Signatures are the entries of export.sig, in file order.
	Signatures []Signature
	// Sig is export.sig as stored.
	Sig []byte
}

// Signature is one entry of export.sig, kept raw so that Verify can pick the
// one made by the key a caller trusts.
type Signature struct {
	// KeyID, KeyVersion and Algorithm come from the signature's SignatureInfo.
	KeyID, KeyVersion, Algorithm string
	// BatchNum and BatchSize are the signature's copy of the file's.
	BatchNum, BatchSize int32
	// DER is the ASN.1 DER ECDSA signature over SHA-256 of Bin.
	DER []byte
}
