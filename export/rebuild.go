package export

import "fmt"

// Rebuild makes again the export.zip that the holder of the signing keys
// made for f, from its export.sig alone: export.bin is deterministic, so
// with the same signature infos it comes out byte for byte, and the
// original signatures still verify. This is how a region serves another
// region's files, unchanged, without its private key.
func Rebuild(f File, sig []byte) ([]byte, error) {
	if err := checkFile(&f); err != nil {
		return nil, err
	}
	sigs, err := decodeSig(sig)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: export.sig holds no signature", ErrMalformed)
	}
	infos := make([]SigningKey, len(sigs))
	for i, s := range sigs {
		infos[i] = SigningKey{KeyID: s.KeyID, KeyVersion: s.KeyVersion}
	}
	bin, err := marshalBin(&f, infos)
	if err != nil {
		return nil, err
	}
	return zipEntries(bin, sig)
}
