package export

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Verify checks that a signature from keyID/version verifies over export.bin
// with pub, as a device does: it selects the signatures by key id and version
// (a file may carry several, for key rotation), and one of them must be a
// valid ECDSA P-256 / SHA-256 signature. It returns an error wrapping
// ErrNoSignature if the file has no signature by that key, ErrBadSignature if
// it has one that does not verify.
func (d *Decoded) Verify(pub *ecdsa.PublicKey, keyID, keyVersion string) error {
	if pub == nil || pub.Curve != elliptic.P256() {
		return errors.New("export: verify: not a P-256 public key")
	}
	digest := sha256.Sum256(d.Bin)
	found := false
	for _, s := range d.Signatures {
		if s.KeyID != keyID || s.KeyVersion != keyVersion {
			continue
		}
		found = true
		if s.Algorithm == SignatureAlgorithm && ecdsa.VerifyASN1(pub, digest[:], s.DER) {
			return nil
		}
	}
	if !found {
		return fmt.Errorf("%w %q version %q", ErrNoSignature, keyID, keyVersion)
	}
	return fmt.Errorf("%w: key %q version %q", ErrBadSignature, keyID, keyVersion)
}

// VerifyBlob checks a SignedZip's export.sig over its export.bin by
// keyID/version, as Verify does for an export file, without reading the
// content as keys. It returns the content.
func VerifyBlob(zipData []byte, pub *ecdsa.PublicKey, keyID, keyVersion string) ([]byte, error) {
	bin, sig, err := entries(zipData)
	if err != nil {
		return nil, err
	}
	sigs, err := decodeSig(sig)
	if err != nil {
		return nil, err
	}
	d := &Decoded{Bin: bin, Sig: sig, Signatures: sigs}
	if err := d.Verify(pub, keyID, keyVersion); err != nil {
		return nil, err
	}
	return bin, nil
}
