package publish

import (
	"crypto/rand"
	"encoding/base64"
	mrand "math/rand/v2"
)

// Padding sizes of the reference (RESPONSE_PADDING_MIN_BYTES and
// RESPONSE_PADDING_RANGE defaults): 1024 to 2047 random bytes.
const (
	paddingMinBytes   = 1024
	paddingRangeBytes = 1024
)

// Padding returns 1-2 KB of random bytes in standard base64 for the
// "padding" field of every publish answer (success, error or chaff), so that
// the size of the answer does not tell an observer what happened.
func Padding() string {
	b := make([]byte, paddingMinBytes+mrand.IntN(paddingRangeBytes))
	// crypto/rand.Read never fails (it aborts the program if the system
	// source does), so its error is always nil.
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
