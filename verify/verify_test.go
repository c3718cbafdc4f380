package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAcceptSet(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		want   []string
		err    string
	}{
		{nil, nil, ""},
		{[]string{}, nil, ""},
		{[]string{"confirmed"}, []string{"confirmed"}, ""},
		{[]string{"likely"}, []string{"confirmed", "likely"}, ""},
		{[]string{"negative"}, []string{"confirmed", "likely", "negative"}, ""},
		{[]string{"user-report"}, []string{"confirmed", "user-report"}, ""},
		{[]string{"confirmed", "likely", "negative"}, []string{"confirmed", "likely", "negative"}, ""},
		{[]string{"likely", "user-report"}, []string{"confirmed", "likely", "user-report"}, ""},
		{[]string{"confirmed", "positive"}, nil, CodeInvalidTestType},
		{[]string{"Likely", "USER-REPORT"}, []string{"confirmed", "likely", "user-report"}, ""}, // the reference lowercases
	} {
		got, err := AcceptSet(tc.accept)
		if tc.err != "" {
			if err == nil || err.Code != tc.err || err.Status != http.StatusBadRequest {
				t.Errorf("%v: %v, want 400 %s", tc.accept, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%v: %v %v, want %v", tc.accept, got, err, tc.want)
		}
	}
}

func TestParseDay(t *testing.T) {
	now := time.Date(2026, 12, 1, 23, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		date string
		tz   float64
		want string // "" ok, else error code
	}{
		{"", 0, ""},
		{"2026-12-01", 0, ""},
		{"2026-11-03", 0, ""},
		{"2026-11-02", 0, CodeInvalidDate},
		{"2026-12-02", 0, CodeInvalidDate},
		{"2026-12-02", 60, ""}, // already tomorrow an hour east of UTC
		{"01/12/2026", 0, CodeInvalidDate},
		{"2026-13-01", 0, CodeInvalidDate},
		{"2026-12-02", 840, ""},                     // UTC+14:00, the easternmost zone
		{"9999-12-31", 1e10, CodeInvalidDate},       // an offset of no zone moved "today" anywhere
		{"2026-12-01", 841, CodeInvalidDate},        // beyond every zone
		{"2026-11-30", -12*60 - 1, CodeInvalidDate}, // beyond every zone
	} {
		day, err := ParseDay(tc.date, tc.tz, now)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s tz %v: %v", tc.date, tc.tz, err)
		case tc.want != "" && (err == nil || err.Code != tc.want):
			t.Errorf("%s tz %v: %v, want %s", tc.date, tc.tz, err, tc.want)
		case tc.want == "" && FormatDay(day) != tc.date:
			t.Errorf("%s: day %d formats as %q", tc.date, day, FormatDay(day))
		}
	}
	if got := OnsetInterval(20_000); got != 2_880_000 {
		t.Fatalf("onset interval of day 20000: %d", got)
	}
}

func TestCodes(t *testing.T) {
	if c := NewShortCode(8); !regexp.MustCompile(`^[0-9]{8}$`).MatchString(c) {
		t.Fatalf("short code %q", c)
	}
	if c := NewLongCode(16); !regexp.MustCompile(`^[a-z0-9]{16}$`).MatchString(c) {
		t.Fatalf("long code %q", c)
	}
	k1, k2 := []byte("key one"), []byte("key two")
	if string(Hash(k1, "1234-5678")) != string(Hash(k1, " 12345678 ")) || string(Hash(k1, "ABCD")) != string(Hash(k1, "abcd")) {
		t.Fatal("a code typed with spaces, dashes or capitals hashes differently")
	}
	if string(Hash(k1, "12345678")) == string(Hash(k2, "12345678")) || len(Hashes([][]byte{k1, k2}, "1")) != 2 {
		t.Fatal("hashes do not depend on the key")
	}
}

func newKey(t *testing.T, kid string) SigningKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return SigningKey{Kid: kid, Private: k}
}

// A token verifies under the key named by its kid, for its issuer, before
// it expires; anything else is token_invalid.
func TestToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old, cur := newKey(t, "t1"), newKey(t, "t2")
	tok, err := SignToken(cur, "region-r1", TokenClaims{ID: "jti-1", TestType: "confirmed", TestDate: "2026-11-30"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := ParseToken(tok, []SigningKey{old, cur}, "region-r1", now.Add(time.Hour)); err != nil || id != "jti-1" {
		t.Fatalf("parse: %q %v", id, err)
	}
	other, _ := SignToken(newKey(t, "t2"), "region-r1", TokenClaims{ID: "x"}, now)
	for name, tc := range map[string]struct {
		raw    string
		issuer string
		at     time.Time
	}{
		"expired":      {tok, "region-r1", now.Add(TokenTTL + time.Second)},
		"other issuer": {tok, "region-r2", now},
		"other key":    {other, "region-r1", now},
		"garbage":      {"not.a.token", "region-r1", now},
		"empty":        {"", "region-r1", now},
	} {
		if _, err := ParseToken(tc.raw, []SigningKey{old, cur}, tc.issuer, tc.at); err == nil || err.Code != CodeTokenInvalid {
			t.Errorf("%s: %v, want token_invalid", name, err)
		}
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["sub"] != "confirmed..2026-11-30" {
		t.Fatalf("subject %v", claims["sub"])
	}
}

func TestCheckEKeyHMAC(t *testing.T) {
	raw := make([]byte, 32)
	raw[0], raw[1] = 0xfb, 0xff // + and / in the standard alphabet
	for _, ok := range []string{base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)} {
		if err := CheckEKeyHMAC(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "!!!!", base64.StdEncoding.EncodeToString(raw[:31]), base64.StdEncoding.EncodeToString(append(raw, 0))} {
		if err := CheckEKeyHMAC(bad); err == nil || err.Code != CodeHMACInvalid {
			t.Errorf("%q: %v, want hmac_invalid", bad, err)
		}
	}
}

// The certificate's header and claims are exactly the reference's.
func TestCertificateClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := newKey(t, "v3")
	hmac := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cert, err := SignCertificate(key, CertificateClaims{Issuer: "iss", Audience: "aud", TestType: "likely", EKeyHMAC: hmac, SymptomDay: 20_000}, now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(cert, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if string(header) != `{"alg":"ES256","kid":"v3","typ":"JWT"}` || len(sig) != 64 {
		t.Fatalf("header %s, signature of %d bytes", header, len(sig))
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": "iss", "aud": "aud", "iat": float64(now.Unix() - 5), "nbf": float64(now.Unix() - 5),
		"exp": float64(now.Add(15 * time.Minute).Unix()), "reportType": "likely", "symptomOnsetInterval": float64(2_880_000), "tekmac": hmac}
	if len(claims) != len(want) {
		t.Fatalf("claims %v, want exactly %v", claims, want)
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	noOnset, _ := SignCertificate(key, CertificateClaims{Issuer: "iss", Audience: "aud", TestType: "confirmed", EKeyHMAC: hmac}, now)
	payload, _ = base64.RawURLEncoding.DecodeString(strings.Split(noOnset, ".")[1])
	if strings.Contains(string(payload), "symptomOnsetInterval") {
		t.Fatalf("a certificate without a symptom date carries an onset: %s", payload)
	}
}

// A nonce is taken in every base64 alphabet, padded or not, as the
// reference takes it.
func TestDecodeNonce(t *testing.T) {
	raw := []byte{0xfb, 0xff, 0xfe, 1, 2}
	for _, s := range []string{"+//+AQI=", "-__-AQI=", "+//+AQI", "-__-AQI"} {
		if got, err := DecodeNonce(s); err != nil || !slices.Equal(got, raw) {
			t.Errorf("%q: %x %v", s, got, err)
		}
	}
	if _, err := DecodeNonce("not base64!"); err == nil {
		t.Error("a nonce that is not base64 was taken")
	}
}
