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
)

// Error is a refusal by the state machine: the command changed nothing.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

func refuse(code Code, format string, args ...any) Response {
	return Response{Err: &Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}
