package publish

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Verified is an upload that passed every check: what the api layer puts
// in the raft publish command and needs for its answer.
type Verified struct {
	// Issuer is the health authority whose certificate admitted the upload,
	// Kid the key of that authority that verified the certificate.
	Issuer, Kid string
	// AppID is the request's healthAuthorityID.
	AppID string
	// ReportType is the certificate's report type (ReportType constants).
	ReportType string
	// CertificateDigest is the SHA-256 of the certificate text, recorded so
	// that a submission can be traced to the certificate that allowed it.
	CertificateDigest [32]byte
	// Keys are the keys to store, sorted by start then period, without
	// repeats: report type set, a transmission risk of 0 filled from the
	// report type, days since onset filled.
	Keys []*fsmpb.Key
	// Dropped is how many keys failed the per-key rules (not those dropped
	// for their onset distance); with Keys non-empty the answer is a
	// partial_failure (see PartialFailure).
	Dropped int
	// DropErrors says why each dropped key failed; key indices count keys
	// sorted by their base64 text, as in the reference's messages.
	DropErrors []string
	// Warnings are sent in the answer's "warnings" field (keys dropped for
	// their distance from symptom onset).
	Warnings []string
	// Traveler is the request's traveler flag.
	Traveler bool
	// StoreNothing is set for a first upload of type negative, which the
	// reference answers with success and a revision token but does not store.
	StoreNothing bool
}

// PartialFailure returns the code and message a successful answer carries
// when some keys were dropped (HTTP 200, code partial_failure), or nil.
func (v *Verified) PartialFailure() *Error {
	if v.Dropped == 0 {
		return nil
	}
	cause := multiError(v.DropErrors)
	return &Error{Status: http.StatusOK, Code: CodePartialFailure, Message: cause.Error(), Warnings: v.Warnings, err: cause}
}

// Validate checks a decoded publish request as the reference does, in its
// order: the healthAuthorityID must be a known app (else 401
// unknown_health_authority_id); the verification certificate must be valid
// for the keys (else 401 health_authority_verification_certificate_invalid;
// zero keys or no certificate fail here); then 1 to 30 keys, per-key rules
// (failing keys are dropped), symptom-onset distance (keys over 14 days away
// are dropped with a warning) and overlap (else 400 bad_request, also when
// every key failed the per-key rules). now is the server's arrival time.
// Every refusal is an *Error. The revision token is not examined yet.
//
// If every key was dropped for its onset distance alone, Validate succeeds
// with no keys: the reference answers 200 and stores nothing.
func Validate(req *Request, auth Authorities, now time.Time) (*Verified, error) {
	if req == nil {
		return nil, badRequest(http.StatusBadRequest, errors.New("missing publish request"), nil)
	}
	if !auth.AppKnown(req.HealthAuthorityID) {
		return nil, &Error{
			Status:  http.StatusUnauthorized,
			Code:    CodeUnknownHealthAuthorityID,
			Message: fmt.Sprintf("unauthorized health authority: %v", req.HealthAuthorityID),
		}
	}
	cert, err := verifyCertificate(req, auth, now)
	if err != nil {
		return nil, certificateInvalid(err)
	}
	v, err := verifyKeys(req, cert.reportType, cert.onset, now)
	if err != nil {
		return nil, err
	}
	v.Issuer, v.Kid = cert.authority.GetIssuer(), cert.kid
	v.CertificateDigest = sha256.Sum256([]byte(req.VerificationPayload))
	return v, nil
}

// verifyKeys applies the key rules under the report type and symptom
// onset that the authorization (certificate or code) grants.
func verifyKeys(req *Request, reportType string, grantedOnset uint32, now time.Time) (*Verified, error) {
	switch n := len(req.Keys); {
	case n == 0:
		return nil, transformFailed(errors.New("no exposure keys in publish request"), nil)
	case n > maxKeysPerPublish:
		return nil, transformFailed(fmt.Errorf("too many exposure keys in publish: %d, max of %d is allowed", n, maxKeysPerPublish), nil)
	}
	onset := onsetInterval(req.SymptomOnsetInterval, grantedOnset, now)
	t := transformKeys(sortedByKeyText(req.Keys), reportType, onset, now)
	if len(t.keys) == 0 && len(t.dropped) > 0 {
		return nil, transformFailed(multiError(t.dropped), t.warnings)
	}
	if err := checkOverlap(t.keys); err != nil {
		return nil, transformFailed(err, t.warnings)
	}
	return &Verified{
		AppID:        req.HealthAuthorityID,
		ReportType:   reportType,
		Keys:         dedupe(t.keys),
		Dropped:      len(t.dropped),
		DropErrors:   t.dropped,
		Warnings:     t.warnings,
		Traveler:     req.Traveler,
		StoreNothing: reportType == ReportTypeNegative,
	}, nil
}
