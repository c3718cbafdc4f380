package command

import "fmt"

// Code names why the state machine refused a command; the API layer maps
// codes to the error codes of its protocol.
type Code string

// Codes of refusals. They are part of the replicated outcome, so every node
// returns the same code for the same log entry.
const (
	CodeKeyExists         Code = "key_exists"
	CodeInvalidCommand    Code = "invalid_command"
	CodeUnknownAuthority  Code = "unknown_authority"
	CodeUnknownNode       Code = "unknown_node"
	CodeStaleSeal         Code = "stale_seal"
	CodeNothingToSeal     Code = "nothing_to_seal"
	CodeUnknownSubmission Code = "unknown_submission"
	CodeUnknownKey        Code = "unknown_key"
	CodeUnknownProvider   Code = "unknown_provider"
	CodeCodeCollision     Code = "code_collision"
	CodeBadCode           Code = "bad_code"
	CodeCodeUsed          Code = "code_used"
	CodeCodeExpired       Code = "code_expired"
	CodeCodeLocked        Code = "code_locked"
	CodeKeyAlreadyRevised Code = "key_already_revised"
	CodeBadTransition     Code = "invalid_report_type_transition"
	CodeMissingToken      Code = "missing_revision_token"
	CodeInvalidToken      Code = "invalid_revision_token"
	CodeAuthorityKey      Code = "authority_key_not_valid"
	CodeUnknownRegion     Code = "unknown_region"
	CodeBadBatch          Code = "bad_batch"
	CodeBadSignature      Code = "bad_signature"
	CodeBrokenChain       Code = "broken_chain"
	CodeBatchConflict     Code = "batch_conflict"
	CodeReplayedBatch     Code = "replayed_batch"
	CodeBeforeStart       Code = "before_start_seq"
	// CodeFileTooOld: an export file ended before the retention window.
	CodeFileTooOld Code = "file_too_old"
	// CodeEFGSOrder: an own batch recorded as uploaded to the EU gateway
	// is not the next one to upload.
	CodeEFGSOrder Code = "efgs_out_of_order"
	// Refusals of the verification service, named as its device and
	// issuing API answer them.
	CodeCodeInvalid         Code = "code_invalid"
	CodeUnsupportedTestType Code = "unsupported_test_type"
	CodeTokenExpired        Code = "token_expired"
	CodeUUIDExists          Code = "uuid_already_exists"
	CodeCodeNotFound        Code = "code_not_found"
	CodeUnknownAPIKey       Code = "unknown_api_key"
	CodeUserReportExists    Code = "user_report_exists"
	CodeUnknownUser         Code = "unknown_user"
	// CodeSMSQuota: the region has sent Policy.sms_per_hour codes by SMS
	// in the last hour; CodeNumberQuota: the number has been sent
	// Policy.sms_per_number_per_day in the last 24 hours.
	CodeSMSQuota    Code = "sms_quota_reached"
	CodeNumberQuota Code = "sms_number_quota_reached"
	// CodeProviderQuota: the provider has issued
	// Policy.codes_per_provider_per_day codes in the last 24 hours.
	CodeProviderQuota Code = "provider_quota_reached"
	// CodeInviteInvalid: an invitation that is used, replaced, expired or
	// not the account's.
	CodeInviteInvalid Code = "invite_invalid"
	// CodeServiceEnded: the region's service is winding down or has
	// ended (SET_SERVICE): no uploads, codes or imports are taken.
	CodeServiceEnded Code = "service_ended"
	// CodeServiceOver: the end of service cannot be moved or cancelled
	// once the service has ended.
	CodeServiceOver Code = "service_over"
)

// Error is a refusal by the state machine: the command changed nothing
// (except that a wrong one-time code counts a failure on that code).
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Refused builds a refusal with a formatted message.
func Refused(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
