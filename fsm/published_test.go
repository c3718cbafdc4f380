package fsm

import (
	"testing"
	"unsafe"
)

// A published key gives back every field of every key newKey accepts,
// whether it has days since onset or not, in 24 bytes.
func TestPublishedKeyRoundTrip(t *testing.T) {
	if size := unsafe.Sizeof(PublishedKey{}); size != 24 {
		t.Fatalf("PublishedKey is %d bytes, want 24", size)
	}
	data := make([]byte, KeyLen)
	for _, start := range []int32{0, 2_900_000, 1<<31 - 1} {
		for _, period := range []int32{1, 144} {
			for risk := int32(0); risk <= MaxTransmissionRisk; risk++ {
				for report := int32(0); report <= MaxReportType; report++ {
					for _, onset := range []int32{-MaxDaysSinceOnset, 0, 3, MaxDaysSinceOnset} {
						for _, has := range []bool{false, true} {
							k, err := newKey(data, start, period, risk, report, onset, has)
							if err != nil {
								t.Fatal(err)
							}
							k.Batch = 7
							if got := publishedOf(k).key(7); got != k {
								t.Fatalf("%+v published came back as %+v", k, got)
							}
						}
					}
				}
			}
		}
	}
}
