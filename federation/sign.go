// Package federation lets regions exchange their batches: each region
// signs its sealed batches with its federation key (Ed25519), and a region
// keeps another's batches, relayed byte for byte, once the signature
// verifies against its trust store (checked by the state machine).
package federation

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Key is a region's federation signing key.
type Key struct {
	ID string
	// Private is the Ed25519 private key: in a file (ed25519.PrivateKey),
	// or in a PKCS#11 token (hsm.Token.Ed25519), deterministic alike.
	Private crypto.Signer
}

// Sign wraps an encoded batch body in a signed batch, with the export.sig
// of the batch's export file if there is one, signed twice: signature for
// regions that import under command versions 1 and 2, signature_v2 (over
// the export.sig too) for version 3. Ed25519 and the export signatures
// are deterministic, so every node of the region that holds the keys
// signs a batch to the same bytes.
func (k Key) Sign(body, exportSig []byte) ([]byte, error) {
	sig, err := k.Private.Sign(nil, append([]byte(fsm.FederationDomain), body...), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("federation: sign batch: %w", err)
	}
	sig2, err := k.Private.Sign(nil, fsm.SignedMessageV2(body, exportSig), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("federation: sign batch: %w", err)
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&fsmpb.SignedBatch{
		Body: body, KeyId: k.ID, Signature: sig, ExportSig: exportSig, SignatureV2: sig2})
	if err != nil {
		return nil, fmt.Errorf("federation: encode signed batch: %w", err)
	}
	return out, nil
}

// GenerateKey makes a new federation key pair, as PEM: the private key
// (PKCS #8) and the public key (PKIX) to give to other regions.
func GenerateKey() (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// LoadKey reads a private key file made by GenerateKey.
func LoadKey(path, id string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("federation key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return Key{}, fmt.Errorf("federation key %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("federation key %s: %w", path, err)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("federation key %s: not an Ed25519 key", path)
	}
	if id == "" {
		return Key{}, errors.New("federation key needs an id")
	}
	return Key{ID: id, Private: ed}, nil
}

// PublicKeyDER reads a public key PEM (from GenerateKey) as PKIX DER.
func PublicKeyDER(pemBytes []byte) ([]byte, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	if _, ok := pub.(ed25519.PublicKey); !ok {
		return nil, errors.New("not an Ed25519 public key")
	}
	return block.Bytes, nil
}

// LoadKeyFromPKCS8 wraps a parsed PKCS #8 key (from x509.ParsePKCS8PrivateKey).
func LoadKeyFromPKCS8(k any, id string) (Key, error) {
	ed, ok := k.(ed25519.PrivateKey)
	if !ok || id == "" {
		return Key{}, errors.New("federation key: want an Ed25519 key and an id")
	}
	return Key{ID: id, Private: ed}, nil
}
