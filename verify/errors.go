package verify

import (
	"net/http"

	"github.com/covid-backend/covid-backend/command"
)

// Error codes of the reference verification server, as apps switch on them.
const (
	CodeUnauthorized        = "unauthorized"
	CodeUnparsableRequest   = "unparsable_request"
	CodeInvalidTestType     = "invalid_test_type"
	CodeUnsupportedTestType = "unsupported_test_type"
	CodeCodeInvalid         = "code_invalid"
	CodeCodeExpired         = "code_expired"
	CodeTokenInvalid        = "token_invalid"
	CodeTokenExpired        = "token_expired"
	CodeHMACInvalid         = "hmac_invalid"
	CodeInvalidDate         = "invalid_date"
	CodeMissingDate         = "missing_date"
	CodeUUIDExists          = "uuid_already_exists"
	CodeCodeNotFound        = "code_not_found"
	CodeTooMany             = "too_many_codes"
	CodeUnavailable         = "maintenance_mode"
	CodeUserReportExists    = "user_report_exists"
	CodeInternal            = "internal_server_error"
	CodeMissingNonce        = "missing_nonce"
	CodeMissingPhone        = "missing_phone"
	CodePhoneInvalid        = "phone_number_invalid"
	CodeSMSQuota            = "sms_quota_reached"
	CodeNumberQuota         = "sms_number_quota_reached"
	CodeQuotaExceeded       = "quota_exceeded"
	// CodeServiceEnded (410): the region's service is winding down or has
	// ended; no code is issued or used.
	CodeServiceEnded = "service_ended"
)

// Error is an answer other than 200: its status and error code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func fail(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// FromRefusal maps a state machine refusal of a verification command to
// the answer the reference gives; nil for refusals that are not the
// caller's fault.
func FromRefusal(e *command.Error) *Error {
	switch e.Code {
	case command.CodeCodeInvalid:
		return fail(http.StatusBadRequest, CodeCodeInvalid, "verification code invalid")
	case command.CodeCodeExpired:
		return fail(http.StatusBadRequest, CodeCodeExpired, "verification code expired")
	case command.CodeUnsupportedTestType:
		return fail(http.StatusPreconditionFailed, CodeUnsupportedTestType, "the code's test type is not accepted by this app")
	case command.CodeTokenExpired:
		return fail(http.StatusBadRequest, CodeTokenExpired, "verification token expired")
	case command.CodeUUIDExists:
		return fail(http.StatusConflict, CodeUUIDExists, "a code with this uuid exists")
	case command.CodeCodeNotFound:
		return fail(http.StatusNotFound, CodeCodeNotFound, "no such code")
	case command.CodeUserReportExists:
		return fail(http.StatusConflict, CodeUserReportExists, "this phone already has a user report code")
	case command.CodeSMSQuota:
		return fail(http.StatusServiceUnavailable, CodeSMSQuota, "the region has sent as many codes by SMS as its policy allows this hour; try later, or give the code in person")
	case command.CodeProviderQuota:
		return fail(http.StatusTooManyRequests, CodeQuotaExceeded, "your provider has issued as many codes in the last 24 hours as the region's policy allows; an operator can raise it")
	case command.CodeServiceEnded:
		return fail(http.StatusGone, CodeServiceEnded, e.Message)
	case command.CodeNumberQuota:
		return fail(http.StatusTooManyRequests, CodeNumberQuota, "this number has been sent as many codes by SMS as the region's policy allows in 24 hours; give the code in person")
	}
	return nil
}
