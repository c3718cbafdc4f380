package fsm

import "fmt"

// Code names why a command was refused; the API layer maps codes to the
// error codes of its protocol.
type Code string

// Codes returned by Apply. They are part of the replicated outcome, so every
// node returns the same code for the same entry.
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
	CodeUnknownRegion     Code = "unknown_region"
	CodeBadBatch          Code = "bad_batch"
	CodeBadSignature      Code = "bad_signature"
	CodeBrokenChain       Code = "broken_chain"
	CodeBatchConflict     Code = "batch_conflict"
)

// Error is a refusal by the state machine: the command changed nothing
// (except that a wrong one-time code counts a failure on that code).
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

func refuse(code Code, format string, args ...any) Response {
	return Response{Err: &Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}
