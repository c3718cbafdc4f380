package efgs

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// SignBatch makes an upload's batchSignature: a detached CMS SignedData
// over the batch's bytes (BatchBytes) with SHA-256, one signer, carrying
// the signing certificate alone and the signed attributes the gateway's
// BouncyCastle adds (content type, message digest, signing time), DER in
// standard base64.
func SignBatch(keys []*efgspb.DiagnosisKey, cert *x509.Certificate, key crypto.Signer) (string, error) {
	sd, err := pkcs7.NewSignedData(BatchBytes(keys))
	if err != nil {
		return "", fmt.Errorf("efgs: batch signature: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", fmt.Errorf("efgs: batch signature: %w", err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return "", fmt.Errorf("efgs: batch signature: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// VerifyBatch checks a batchSignature over a batch's keys, as the gateway
// does on upload and a careful country on download: one signer, whose
// certificate the CMS carries, valid at now, and a signature over the
// batch's bytes. It returns that certificate, which the caller must know
// as a country's signing certificate (by Thumbprint) before it trusts the
// keys: the gateway checks no chain (its PR #100), nor does this.
func VerifyBatch(keys []*efgspb.DiagnosisKey, signature string, now time.Time) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return nil, fmt.Errorf("efgs: batch signature is not base64: %w", err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("efgs: batch signature is not CMS: %w", err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("efgs: batch signature has %d signers, want 1", len(p7.Signers))
	}
	cert := p7.GetOnlySigner()
	switch {
	case cert == nil:
		return nil, errors.New("efgs: batch signature carries no signing certificate")
	case now.Before(cert.NotBefore) || now.After(cert.NotAfter):
		return nil, fmt.Errorf("efgs: the signing certificate is valid from %v to %v, not at %v", cert.NotBefore, cert.NotAfter, now)
	}
	p7.Content = BatchBytes(keys)
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("efgs: batch signature does not verify: %w", err)
	}
	return cert, nil
}

// Thumbprint is a certificate's identity at the gateway: the lowercase
// hex SHA-256 of its DER.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}
