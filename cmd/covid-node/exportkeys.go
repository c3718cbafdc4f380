package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Names of the development export key that `serve --dev` makes.
const (
	devExportKeyFile    = "dev-export-key.pem"
	devExportKeyID      = "dev"
	devExportKeyVersion = "v1"
)

// loadExportKeys reads the export signing keys: one PEM file (or
// pkcs11:object=LABEL, a key in the token), key id and version per key,
// in the same order (several during a rotation).
func loadExportKeys(files, ids, versions string, keys *keyFiles) ([]export.SigningKey, error) {
	f, i, v := splitList(files), splitList(ids), splitList(versions)
	if len(f) != len(i) || len(f) != len(v) {
		return nil, fmt.Errorf("export keys: %d files, %d ids, %d versions: give one id and version per file", len(f), len(i), len(v))
	}
	var out []export.SigningKey
	for n, path := range f {
		signer, err := keys.load(path)
		if err != nil {
			return nil, fmt.Errorf("export key: %w", err)
		}
		k := export.SigningKey{Signer: signer, KeyID: i[n], KeyVersion: v[n]}
		if private, ok := signer.(*ecdsa.PrivateKey); ok {
			k.Private, k.Signer = private, nil // deterministic: every node signs alike
		}
		out = append(out, k)
	}
	return out, nil
}

// devExportKey makes (once) and loads the development export key.
func devExportKey(dataDir string) ([]export.SigningKey, error) {
	key, err := loadOrCreateECKey(filepath.Join(dataDir, devExportKeyFile))
	if err != nil {
		return nil, errors.Join(errors.New("development export key"), err)
	}
	return []export.SigningKey{{Private: key, KeyID: devExportKeyID, KeyVersion: devExportKeyVersion}}, nil
}

// exportSigners are the keys that sign new batches: every loaded key but
// the retired ones (given as id/version), which still sign the files of the
// batches sealed while they were in force.
func exportSigners(keys []export.SigningKey, retired string) ([]*fsmpb.ExportSigner, error) {
	gone := map[string]bool{}
	for _, r := range splitList(retired) {
		if !slices.ContainsFunc(keys, func(k export.SigningKey) bool { return k.KeyID+"/"+k.KeyVersion == r }) {
			return nil, fmt.Errorf("retired export key %q: no such key (want id/version of a loaded key)", r)
		}
		gone[r] = true
	}
	var out []*fsmpb.ExportSigner
	for _, k := range keys {
		if gone[k.KeyID+"/"+k.KeyVersion] {
			continue
		}
		sg := &fsmpb.ExportSigner{KeyId: k.KeyID, KeyVersion: k.KeyVersion}
		if k.Private == nil { // in an HSM: signatures made once and replicated
			der, err := x509.MarshalPKIXPublicKey(k.Public())
			if err != nil {
				return nil, fmt.Errorf("export key %s/%s: %w", k.KeyID, k.KeyVersion, err)
			}
			sg.PublicKey = der
		}
		out = append(out, sg)
	}
	if len(keys) > 0 && len(out) == 0 {
		return nil, errors.New("every export key is retired: new batches would have no signer")
	}
	return out, nil
}
