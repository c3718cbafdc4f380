package publish

import (
	"fmt"
	"net/http"
)

// GAEN publish error codes, sent in the "code" field of a Response. They are
// the reference's strings, which apps map to localized messages.
const (
	CodeUnknownHealthAuthorityID       = "unknown_health_authority_id"
	CodeVerificationCertificateInvalid = "health_authority_verification_certificate_invalid"
	CodeBadRequest                     = "bad_request"
	CodeMissingRevisionToken           = "missing_revision_token"
	CodeInvalidRevisionToken           = "invalid_revision_token"
	CodeKeyAlreadyRevised              = "key_already_revised"
	CodeInvalidReportTypeTransition    = "invalid_report_type_transition"
	CodeUnableToLoadHealthAuthority    = "unable_to_load_health_authority"
	CodeInternalError                  = "internal_error"
	CodePartialFailure                 = "partial_failure"
	// CodeServiceEnded (410): the region's service is winding down or has
	// ended; no upload is taken again.
	CodeServiceEnded = "service_ended"
)

// Error is a refusal of a publish request with the HTTP status and GAEN error
// code the api layer must answer with, so that every refusal is reported the
// way reference clients expect.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Code is one of the Code constants.
	Code string
	// Message is the human-readable "error" field of the answer.
	Message string
	// Warnings are sent in the "warnings" field of the answer (keys dropped
	// for their distance from symptom onset before the request failed).
	Warnings []string

	err error
}

// Error returns the code and message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the underlying cause, if any, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.err }

// Response converts the refusal into the JSON answer (without padding).
func (e *Error) Response() *Response {
	return &Response{ErrorMessage: e.Message, Code: e.Code, Warnings: e.Warnings}
}

func badRequest(status int, cause error, warnings []string) *Error {
	return &Error{Status: status, Code: CodeBadRequest, Message: cause.Error(), Warnings: warnings, err: cause}
}

func certificateInvalid(cause error) *Error {
	return &Error{
		Status:  http.StatusUnauthorized,
		Code:    CodeVerificationCertificateInvalid,
		Message: fmt.Sprintf("unable to validate diagnosis verification: %v", cause),
		err:     cause,
	}
}

// transformFailed is the reference's refusal when no key survives the per-key
// rules, or when the kept keys overlap illegally.
func transformFailed(cause error, warnings []string) *Error {
	return badRequest(http.StatusBadRequest, fmt.Errorf("unable to read request data: %w", cause), warnings)
}
