package efgs_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/efgs"
)

// FuzzCheckUpload: an upload is whatever a country (or a stranger past the
// hub's TLS) sends; without a valid signature it is refused with one of
// the gateway's statuses for bad input, and never panics.
func FuzzCheckUpload(f *testing.F) {
	f.Add("application/protobuf; version=1.0", []byte{0x0a, 0x02, 0x0a, 0x00})
	f.Add("application/json; version=1.0", []byte(`{"keys":[{"keyData":"AAAAAAAAAAAAAAAAAAAAAA==","rollingPeriod":144}]}`))
	f.Add("application/json; version=2.0", []byte(`{}`))
	none := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		_, ref := efgs.CheckUpload("DE", contentType, "tag", "c2ln", body, none, time.Now())
		if ref == nil || !slices.Contains([]int{http.StatusBadRequest, http.StatusNotAcceptable, http.StatusRequestEntityTooLarge}, ref.Status) {
			t.Fatalf("%q with %d bytes: %v", contentType, len(body), ref)
		}
	})
}
