package verify

import (
	"net/http"
	"slices"
	"strings"
)

// Test types of codes, tokens and certificates.
const (
	TestConfirmed  = "confirmed"
	TestLikely     = "likely"
	TestNegative   = "negative"
	TestUserReport = "user-report"
)

// TestTypes are the test types a code may have.
var TestTypes = []string{TestConfirmed, TestLikely, TestNegative, TestUserReport}

// acceptable is what each accept value lets an app take.
var acceptable = map[string][]string{
	TestConfirmed:  {TestConfirmed},
	TestLikely:     {TestConfirmed, TestLikely},
	TestNegative:   {TestConfirmed, TestLikely, TestNegative},
	TestUserReport: {TestConfirmed, TestUserReport},
}

// AcceptSet expands an app's accept list into the test types it takes,
// sorted: the union of each value's set; nil (missing, empty or null)
// means every type. An unknown value is 400 invalid_test_type.
func AcceptSet(accept []string) ([]string, *Error) {
	var out []string
	for _, a := range accept {
		set, ok := acceptable[strings.ToLower(a)] // the reference lowercases
		if !ok {
			return nil, fail(http.StatusBadRequest, CodeInvalidTestType, "accept: unknown test type "+quote(a))
		}
		for _, t := range set {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// quote bounds and quotes a client's string for an error message.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}
