package publish

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	const key = `{"key":"Fy/EgOWYSQw0F3YEM5sVQw==","rollingStartNumber":2649980,"rollingPeriod":144,"transmissionRisk":3}`
	valid := `{"temporaryExposureKeys":[` + key + `],"healthAuthorityID":"app","verificationPayload":"jwt","hmacKey":"aGk=","symptomOnsetInterval":2649888,"traveler":true,"revisionToken":"","padding":"cGFk"}`

	cases := []struct {
		name   string
		body   string
		status int // 0: accepted
		check  func(*testing.T, *Request)
	}{
		{name: "valid", body: valid, check: func(t *testing.T, r *Request) {
			want := ExposureKey{Key: "Fy/EgOWYSQw0F3YEM5sVQw==", IntervalNumber: 2649980, IntervalCount: 144, TransmissionRisk: 3}
			if len(r.Keys) != 1 || r.Keys[0] != want || r.HealthAuthorityID != "app" || r.VerificationPayload != "jwt" ||
				r.HMACKey != "aGk=" || r.SymptomOnsetInterval != 2649888 || !r.Traveler || r.Padding != "cGFk" {
				t.Errorf("decoded %+v", r)
			}
		}},
		{name: "surrounding whitespace", body: "\n\t " + valid + " \r\n"},
		{name: "case-insensitive keys",
			body: `{"TEMPORARYEXPOSUREKEYS":[{"KEY":"abc","RollingStartNumber":5,"ROLLINGPERIOD":6}],"healthauthorityid":"app","HMACKEY":"k"}`,
			check: func(t *testing.T, r *Request) {
				if len(r.Keys) != 1 || r.Keys[0].Key != "abc" || r.Keys[0].IntervalNumber != 5 || r.Keys[0].IntervalCount != 6 ||
					r.HealthAuthorityID != "app" || r.HMACKey != "k" {
					t.Errorf("decoded %+v", r)
				}
			}},
		{name: "url-safe unpadded key kept as sent",
			body: `{"temporaryExposureKeys":[{"key":"Fy_EgOWYSQw0F3YEM5sVQw","rollingStartNumber":1,"rollingPeriod":1}]}`,
			check: func(t *testing.T, r *Request) {
				if r.Keys[0].Key != "Fy_EgOWYSQw0F3YEM5sVQw" {
					t.Errorf("key text = %q", r.Keys[0].Key)
				}
				data, err := DecodeBase64(r.Keys[0].Key)
				if err != nil || len(data) != 16 {
					t.Errorf("key decodes to %d bytes, %v", len(data), err)
				}
			}},
		{name: "unknown field", body: `{"healthAuthorityID":"app","regions":["US"]}`, status: 400},
		{name: "unknown key field", body: `{"temporaryExposureKeys":[{"key":"a","reportType":1}]}`, status: 400},
		{name: "trailing object", body: valid + `{}`, status: 400},
		{name: "trailing garbage", body: valid + ` x`, status: 400},
		{name: "trailing brace", body: valid + `}`, status: 400},
		{name: "empty body", body: ``, status: 400},
		{name: "whitespace body", body: " \n", status: 400},
		{name: "null", body: `null`, status: 400},
		{name: "array", body: `[]`, status: 400},
		{name: "truncated", body: valid[:40], status: 400},
		{name: "syntax error", body: `{"healthAuthorityID":}`, status: 400},
		{name: "wrong type", body: `{"traveler":"yes"}`, status: 400},
		{name: "int32 overflow", body: `{"symptomOnsetInterval":2147483648}`, status: 400},
		{name: "too large", body: `{"padding":"` + strings.Repeat("A", MaxBodyBytes) + `"}`, status: 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeRequest([]byte(tc.body))
			if tc.status != 0 {
				wantError(t, err, tc.status, CodeBadRequest)
				if req != nil {
					t.Error("refused body returned a request")
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if tc.check != nil {
				tc.check(t, req)
			}
		})
	}
}

func TestCheckContentType(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"Application/JSON":                false,
		"text/plain":                      false,
		"":                                false,
	} {
		err := CheckContentType(ct)
		if ok && err != nil {
			t.Errorf("CheckContentType(%q) = %v", ct, err)
		}
		if !ok {
			wantError(t, err, http.StatusUnsupportedMediaType, CodeBadRequest)
		}
	}
}

func TestResponseJSON(t *testing.T) {
	b, err := json.Marshal(Response{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{}` {
		t.Errorf("empty response = %s, want {}", b)
	}
	b, err = json.Marshal(Response{RevisionToken: "t", InsertedExposures: 2, ErrorMessage: "e", Code: "c", Padding: "p", Warnings: []string{"w"}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"revisionToken":"t","insertedExposures":2,"error":"e","code":"c","padding":"p","warnings":["w"]}`
	if string(b) != want {
		t.Errorf("response = %s, want %s", b, want)
	}
}

func TestPadding(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		p := Padding()
		// 1024..2047 bytes in padded base64.
		if len(p) < 1368 || len(p) > 2732 {
			t.Fatalf("padding length %d outside 1-2 KB of base64", len(p))
		}
		if _, err := DecodeBase64(p); err != nil {
			t.Fatalf("padding is not base64: %v", err)
		}
		seen[p] = true
	}
	if len(seen) != 20 {
		t.Error("padding repeats")
	}
}
