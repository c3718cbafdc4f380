package publish

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBodyBytes is the largest publish body the reference reads; a larger
// one is refused with 413 bad_request, before any parsing.
const MaxBodyBytes = 64_000

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

// Request is the JSON body of POST /v1/publish, field for field the
// reference's v1 Publish, so that reference apps can upload unchanged.
//
// RevisionToken is accepted but ignored for now: revisions come later, and
// until then a key that is already stored is refused by the state machine.
type Request struct {
	Keys                 []ExposureKey `json:"temporaryExposureKeys"`
	HealthAuthorityID    string        `json:"healthAuthorityID"`
	VerificationPayload  string        `json:"verificationPayload"`
	HMACKey              string        `json:"hmacKey"`
	SymptomOnsetInterval int32         `json:"symptomOnsetInterval"`
	Traveler             bool          `json:"traveler"`
	RevisionToken        string        `json:"revisionToken"`
	Padding              string        `json:"padding"`
}

// ExposureKey is one temporary exposure key as an app uploads it: Key is
// the base64 text (kept as sent, since the tekmac covers that text),
// IntervalNumber and IntervalCount are the rolling start and period in
// 10-minute intervals.
type ExposureKey struct {
	Key              string `json:"key"`
	IntervalNumber   int32  `json:"rollingStartNumber"`
	IntervalCount    int32  `json:"rollingPeriod"`
	TransmissionRisk int    `json:"transmissionRisk"`
}

// Response is the JSON answer to a publish request, with the reference's
// field names and omitempty behaviour so that apps parse it unchanged. The
// api layer always sets Padding and the header x-api-version: v1.
type Response struct {
	RevisionToken     string   `json:"revisionToken,omitempty"`
	InsertedExposures int      `json:"insertedExposures,omitempty"`
	ErrorMessage      string   `json:"error,omitempty"`
	Code              string   `json:"code,omitempty"`
	Padding           string   `json:"padding,omitempty"`
	Warnings          []string `json:"warnings,omitempty"`
}

// CheckContentType refuses a request whose Content-Type does not start with
// "application/json" (case-sensitive, parameters such as charset allowed),
// with 415 bad_request as the reference does.
func CheckContentType(contentType string) error {
	if !strings.HasPrefix(contentType, "application/json") {
		return badRequest(http.StatusUnsupportedMediaType,
			errors.New("error unmarshalling API call, code: 415: content-type is not application/json"), nil)
	}
	return nil
}

// DecodeRequest parses a publish body strictly, as the reference does, so
// that malformed uploads fail loudly instead of being half-read: the body
// must be one JSON object (an empty body, a non-object such as null, or any
// non-whitespace data after the object is refused), unknown fields are
// refused, and field names match case-insensitively (encoding/json's rule).
// A body over MaxBodyBytes is refused with 413. Every refusal is an *Error
// with code bad_request.
//
// The reference accepts a stray '}' or ']' after the object and treats a
// JSON null as an empty request; both are refused here.
func DecodeRequest(body []byte) (*Request, error) {
	if len(body) > MaxBodyBytes {
		return nil, decodeError(http.StatusRequestEntityTooLarge, errors.New("http: request body too large"))
	}
	trimmed := bytes.TrimLeft(body, jsonSpace)
	if len(trimmed) == 0 {
		return nil, decodeError(http.StatusBadRequest, errors.New("body must not be empty"))
	}
	if trimmed[0] != '{' {
		return nil, decodeError(http.StatusBadRequest, errors.New("body must be a JSON object"))
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return nil, decodeError(http.StatusBadRequest, describeJSONError(err))
	}
	if rest := bytes.TrimLeft(body[dec.InputOffset():], jsonSpace); len(rest) != 0 {
		return nil, decodeError(http.StatusBadRequest, errors.New("body must contain only one JSON object"))
	}
	return &req, nil
}

func decodeError(status int, cause error) *Error {
	return badRequest(status, fmt.Errorf("error unmarshalling API call, code: %d: %w", status, cause), nil)
}

// describeJSONError words a decoding error as the reference does.
func describeJSONError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("malformed json at position %d: %w", syntaxErr.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("malformed json: %w", err)
	case errors.As(err, &typeErr):
		return fmt.Errorf("invalid value %q at position %d: %w", typeErr.Field, typeErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return fmt.Errorf("failed to decode json: %w", err)
	}
}
