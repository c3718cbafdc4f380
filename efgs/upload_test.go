package efgs_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// freshKeys are n valid keys of origin, of the last days.
func freshKeys(n int, origin string, now time.Time) []*efgspb.DiagnosisKey {
	keys := make([]*efgspb.DiagnosisKey, n)
	day := uint32(now.UTC().Truncate(24*time.Hour).Unix() / 600)
	for i := range keys {
		data := make([]byte, 16)
		rand.Read(data)
		keys[i] = &efgspb.DiagnosisKey{KeyData: data, RollingStartIntervalNumber: day - uint32(i%10)*144, RollingPeriod: 144,
			TransmissionRiskLevel: int32(i % 9), VisitedCountries: []string{"DE", "NL"}, Origin: origin, ReportType: efgspb.ReportType_CONFIRMED_TEST}
	}
	return keys
}

// An upload is checked as the gateway checks it, with its statuses: the
// content type (400, 406), every key (400, one bad key refuses all), the
// count (413), the tag, the signature (400 "Invalid signature": another
// country's certificate, one not registered, other keys), the origin.
func TestCheckUpload(t *testing.T) {
	now := time.Now()
	deKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nlKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	strayKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	de, nl, stray := signingCert(t, deKey, "DE"), signingCert(t, nlKey, "NL"), signingCert(t, strayKey, "DE")
	signers := func(th string) (string, bool) {
		switch th {
		case efgs.Thumbprint(de):
			return "DE", true
		case efgs.Thumbprint(nl):
			return "NL", true
		}
		return "", false
	}
	sign := func(keys []*efgspb.DiagnosisKey, cert *x509.Certificate, key crypto.Signer) string {
		t.Helper()
		sig, err := efgs.SignBatch(keys, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	body := func(keys []*efgspb.DiagnosisKey) []byte {
		b, _ := proto.Marshal(&efgspb.DiagnosisKeyBatch{Keys: keys})
		return b
	}
	const pb = "application/protobuf; version=1.0"
	keys := freshKeys(20, "DE", now)
	good := sign(keys, de, deKey)

	up, ref := efgs.CheckUpload("DE", pb, "t1", good, body(keys), signers, now)
	if ref != nil || len(up.Keys) != 20 || up.Tag != "t1" || up.Signer != efgs.Thumbprint(de) {
		t.Fatalf("a good upload: %v", ref)
	}
	js, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(&efgspb.DiagnosisKeyBatch{Keys: keys})
	if _, ref := efgs.CheckUpload("DE", "application/json; version=1.0", "t1", good, js, signers, now); ref != nil {
		t.Fatalf("the same upload in JSON: %v", ref)
	}

	badKey := freshKeys(20, "DE", now)
	badKey[7].KeyData = badKey[7].KeyData[:15]
	old := freshKeys(20, "DE", now)
	old[3].RollingStartIntervalNumber -= 20 * 144
	badTRL := freshKeys(20, "DE", now)
	badTRL[0].TransmissionRiskLevel = 9
	tooMany := freshKeys(efgs.MaxUploadKeys+1, "DE", now)
	nlOrigin := freshKeys(20, "NL", now)
	for _, tc := range []struct {
		name, contentType, tag, sig string
		body                        []byte
		status                      int
		says                        string
	}{
		{"no content type", "", "t", good, body(keys), http.StatusBadRequest, "Content-Type"},
		{"XML", "application/xml; version=1.0", "t", good, body(keys), http.StatusBadRequest, "Content-Type"},
		{"no version", "application/protobuf", "t", good, body(keys), http.StatusBadRequest, "version"},
		{"a version not major.minor", "application/protobuf; version=1", "t", good, body(keys), http.StatusBadRequest, "version"},
		{"version 1.1", "application/protobuf; version=1.1", "t", good, body(keys), http.StatusNotAcceptable, "1.1"},
		{"not a batch", pb, "t", good, []byte("\xff\xff\xff"), http.StatusBadRequest, "not a DiagnosisKeyBatch"},
		{"a key of 15 bytes", pb, "t", good, body(badKey), http.StatusBadRequest, "Validation of diagnosis key failed: key 7"},
		{"a key of 20 days ago", pb, "t", good, body(old), http.StatusBadRequest, "key 3: rollingStartIntervalNumber"},
		{"a transmission risk of 9", pb, "t", good, body(badTRL), http.StatusBadRequest, "transmissionRiskLevel"},
		{"5,001 keys", pb, "t", good, body(tooMany), http.StatusRequestEntityTooLarge, "at most 5000"},
		{"no tag", pb, "", good, body(keys), http.StatusBadRequest, "batchTag"},
		{"a tag of 65 characters", pb, strings.Repeat("t", 65), good, body(keys), http.StatusBadRequest, "batchTag"},
		{"signed by another country", pb, "t", sign(keys, nl, nlKey), body(keys), http.StatusBadRequest, "Invalid signature"},
		{"signed by a certificate not registered", pb, "t", sign(keys, stray, strayKey), body(keys), http.StatusBadRequest, "Invalid signature"},
		{"a signature over other keys", pb, "t", sign(keys[1:], de, deKey), body(keys), http.StatusBadRequest, "Invalid signature"},
		{"keys of another origin", pb, "t", sign(nlOrigin, de, deKey), body(nlOrigin), http.StatusBadRequest, "origin"},
	} {
		_, ref := efgs.CheckUpload("DE", tc.contentType, tc.tag, tc.sig, tc.body, signers, now)
		if ref == nil || ref.Status != tc.status || !strings.Contains(ref.Message, tc.says) {
			t.Errorf("%s: %v, want %d saying %q", tc.name, ref, tc.status, tc.says)
		}
	}
}
