package publish

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecodeAndValidate is the work every upload costs the node that
// receives it before anything is stored: decode the JSON body, verify the
// ES256 certificate and the tekmac, apply the key rules (14 keys).
// benchstat-comparable: go test -run XXX -bench . -count 10 ./publish/
func BenchmarkDecodeAndValidate(b *testing.B) {
	u := newUploader(b)
	var keys []ExposureKey
	for day := range int32(14) {
		keys = append(keys, u.key(day+1, 3))
	}
	body, err := json.Marshal(u.request(keys, ReportTypeConfirmed, 0))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req, err := DecodeRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		if v, err := Validate(req, u.auth, u.now); err != nil || len(v.Keys) != 14 {
			b.Fatalf("%v, %d keys", err, len(v.Keys))
		}
	}
}

// BenchmarkTEKMAC is the tekmac of 14 keys, as Validate checks it.
func BenchmarkTEKMAC(b *testing.B) {
	u := newUploader(b)
	var keys []ExposureKey
	for day := range int32(14) {
		keys = append(keys, u.key(day+1, 0))
	}
	secret := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := allowedTEKMACs(secret, keys); err != nil {
			b.Fatal(err)
		}
	}
}
