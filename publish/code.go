package publish

import (
	"errors"
	"net/http"
	"time"
)

// CodeGrant is what an issued code authorizes: the report type and the
// symptom onset the provider recorded.
type CodeGrant struct {
	ReportType           string
	SymptomOnsetInterval uint32
}

// ValidateWithCode checks an upload authorized by a one-time code: the
// code itself is checked and consumed by the state machine; here the keys
// get the same rules as with a certificate, under the code's grant.
func ValidateWithCode(req *Request, grant CodeGrant, now time.Time) (*Verified, error) {
	if req == nil {
		return nil, badRequest(http.StatusBadRequest, errors.New("missing publish request"), nil)
	}
	if !validReportType(grant.ReportType) {
		return nil, &Error{Status: http.StatusInternalServerError, Code: CodeInternalError, Message: "code grants an unknown report type"}
	}
	return verifyKeys(req, grant.ReportType, grant.SymptomOnsetInterval, now)
}
