package efgs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// AuditEntry is one upload batch within a download batch, as the gateway's
// audit (GET /diagnosiskeys/audit/download/{date}/{tag}) lists it, in the
// order its keys stand in the download.
type AuditEntry struct {
	Country                             string `json:"country"`
	UploadedTime                        string `json:"uploadedTime"`
	UploaderCertificate                 string `json:"uploaderCertificate"`
	UploaderThumbprint                  string `json:"uploaderThumbprint"`
	UploaderOperatorSignature           string `json:"uploaderOperatorSignature"`
	SigningCertificate                  string `json:"signingCertificate"`
	UploaderSigningThumbprint           string `json:"uploaderSigningThumbprint"`
	SigningCertificateOperatorSignature string `json:"signingCertificateOperatorSignature"`
	Amount                              int    `json:"amount"`
	BatchSignature                      string `json:"batchSignature"`
}

// Rejected is an upload batch of a download whose keys are not taken, and
// why.
type Rejected struct {
	Country string
	Keys    int
	Reason  error
}

// VerifyDownload checks a download batch against its audit, as a careful
// country does (the Finnish backend did; CWA never did): the entries of
// the country own are skipped (the download holds none of its keys), the
// keys are cut into the others' amounts in order, and an upload batch's
// keys are kept only when its signing certificate is signed by the trust
// anchor (over its PEM text as stored), has the thumbprint the audit gives
// and the entry's country, its batch signature verifies over exactly those
// keys with that certificate, and every key's origin is that country. The
// keys of a batch that fails are rejected, with why; an audit that does
// not add up to the download is an error, and nothing is kept.
func VerifyDownload(keys []*efgspb.DiagnosisKey, audit []AuditEntry, anchor *x509.Certificate, own string, now time.Time) ([]*efgspb.DiagnosisKey, []Rejected, error) {
	var kept []*efgspb.DiagnosisKey
	var rejected []Rejected
	at := 0
	for _, e := range audit {
		if e.Country == own {
			continue
		}
		if e.Amount < 1 || at+e.Amount > len(keys) {
			return nil, nil, fmt.Errorf("efgs: the audit's amounts do not add up to the download's %d keys", len(keys))
		}
		slice := keys[at : at+e.Amount]
		at += e.Amount
		if err := verifyEntry(slice, e, anchor, now); err != nil {
			rejected = append(rejected, Rejected{Country: e.Country, Keys: len(slice), Reason: err})
			continue
		}
		kept = append(kept, slice...)
	}
	if at != len(keys) {
		return nil, nil, fmt.Errorf("efgs: the audit covers %d of the download's %d keys", at, len(keys))
	}
	return kept, rejected, nil
}

func verifyEntry(keys []*efgspb.DiagnosisKey, e AuditEntry, anchor *x509.Certificate, now time.Time) error {
	block, _ := pem.Decode([]byte(e.SigningCertificate))
	if block == nil {
		return errors.New("the signing certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("the signing certificate: %w", err)
	}
	if err := AnchorSigned(anchor, []byte(e.SigningCertificate), e.SigningCertificateOperatorSignature); err != nil {
		return err
	}
	switch {
	case Thumbprint(cert) != e.UploaderSigningThumbprint:
		return errors.New("the signing certificate's thumbprint is not the audit's")
	case !slices.Contains(cert.Subject.Country, e.Country):
		return fmt.Errorf("the signing certificate is not of %s", e.Country)
	}
	signer, err := VerifyBatch(keys, e.BatchSignature, now)
	if err != nil {
		return err
	}
	if Thumbprint(signer) != Thumbprint(cert) {
		return errors.New("the batch was signed with another certificate than the audit's")
	}
	for i, k := range keys {
		if k.GetOrigin() != e.Country {
			return fmt.Errorf("key %d: origin %q, not %s", i, k.GetOrigin(), e.Country)
		}
	}
	return nil
}

// AnchorSign is the trust anchor's signature over a certificate's PEM text
// as stored (newlines included), SHA-256, base64: what the gateway's
// operators made with `openssl dgst -sha256 -sign ta.key cert.pem`.
func AnchorSign(key crypto.Signer, certPEM []byte) (string, error) {
	sum := sha256.Sum256(certPEM)
	sig, err := key.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("efgs: trust anchor signature: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// AnchorSigned checks a trust anchor's signature over a certificate's PEM
// text (RSA PKCS #1 v1.5 or ECDSA, SHA-256).
func AnchorSigned(anchor *x509.Certificate, certPEM []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("the trust anchor's signature is not base64: %w", err)
	}
	sum := sha256.Sum256(certPEM)
	switch pub := anchor.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(pub, sum[:], sig) {
			return nil
		}
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil {
			return nil
		}
	}
	return errors.New("the trust anchor did not sign this certificate")
}
