package verify

import "encoding/json"

// ErrorFields are the error fields of every answer: a 200 carries none.
// error_code is the reference's legacy copy of errorCode.
type ErrorFields struct {
	Error           string `json:"error,omitempty"`
	ErrorCode       string `json:"errorCode,omitempty"`
	ErrorCodeLegacy string `json:"error_code,omitempty"`
}

// ErrorOf fills the error fields from an error answer.
func ErrorOf(e *Error) ErrorFields {
	return ErrorFields{Error: e.Message, ErrorCode: e.Code, ErrorCodeLegacy: e.Code}
}

// VerifyRequest is the body of POST /api/verify.
type VerifyRequest struct {
	Code    string          `json:"code"`
	Accept  []string        `json:"accept"`
	Nonce   string          `json:"nonce,omitempty"`
	Padding json.RawMessage `json:"padding,omitempty"`
}

// VerifyResponse is its answer; dates are YYYY-MM-DD, left out when unknown.
type VerifyResponse struct {
	TestType    string `json:"testtype,omitempty"`
	SymptomDate string `json:"symptomDate,omitempty"`
	TestDate    string `json:"testDate,omitempty"`
	Token       string `json:"token,omitempty"`
	ErrorFields
	Padding string `json:"padding"`
}

// CertificateRequest is the body of POST /api/certificate.
type CertificateRequest struct {
	Token    string          `json:"token"`
	EKeyHMAC string          `json:"ekeyhmac"`
	Padding  json.RawMessage `json:"padding,omitempty"`
}

// CertificateResponse is its answer.
type CertificateResponse struct {
	Certificate string `json:"certificate,omitempty"`
	ErrorFields
	Padding string `json:"padding"`
}

// IssueRequest is one code to issue (POST /api/issue, or an item of
// /api/batch-issue).
type IssueRequest struct {
	TestType         string          `json:"testType"`
	SymptomDate      string          `json:"symptomDate,omitempty"`
	TestDate         string          `json:"testDate,omitempty"`
	TZOffset         float64         `json:"tzOffset,omitempty"`
	Phone            string          `json:"phone,omitempty"`
	UUID             string          `json:"uuid,omitempty"`
	ExternalIssuerID string          `json:"externalIssuerID,omitempty"`
	Padding          json.RawMessage `json:"padding,omitempty"`
	// Run and Line place a code of the portal's bulk issue in its run and
	// at its line (never from JSON); its short code is then kept sealed
	// until it is used, unless it goes by SMS (BulkCodes).
	Run  string `json:"-"`
	Line int    `json:"-"`
}

// IssueResponse answers one issued code: the short code only (the long
// code travels by SMS or link, never in an answer).
type IssueResponse struct {
	UUID                   string `json:"uuid,omitempty"`
	Code                   string `json:"code,omitempty"`
	ExpiresAt              string `json:"expiresAt,omitempty"`
	ExpiresAtTimestamp     int64  `json:"expiresAtTimestamp,omitempty"`
	LongExpiresAt          string `json:"longExpiresAt,omitempty"`
	LongExpiresAtTimestamp int64  `json:"longExpiresAtTimestamp,omitempty"`
	ErrorFields
	Padding string `json:"padding,omitempty"`
	// LongCode is for the portal only; the issuing API never answers it.
	LongCode string `json:"-"`
	// SentTo is the number the long code went to by SMS, in international
	// format (empty: none), for the portal's page to show.
	SentTo string `json:"-"`
}

// BatchIssueRequest is the body of POST /api/batch-issue.
type BatchIssueRequest struct {
	Codes   []IssueRequest  `json:"codes"`
	Padding json.RawMessage `json:"padding,omitempty"`
}

// BatchIssueResponse answers each item in place.
type BatchIssueResponse struct {
	Codes []IssueResponse `json:"codes,omitempty"`
	ErrorFields
	Padding string `json:"padding"`
}

// CodeRequest names a code by its uuid (/api/checkcodestatus,
// /api/expirecode).
type CodeRequest struct {
	UUID    string          `json:"uuid"`
	Padding json.RawMessage `json:"padding,omitempty"`
}

// CodeStatusResponse is the state of a code.
type CodeStatusResponse struct {
	Claimed                bool  `json:"claimed"`
	ExpiresAtTimestamp     int64 `json:"expiresAtTimestamp,omitempty"`
	LongExpiresAtTimestamp int64 `json:"longExpiresAtTimestamp,omitempty"`
	ErrorFields
	Padding string `json:"padding"`
}
