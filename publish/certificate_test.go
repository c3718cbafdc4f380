package publish

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Facts of testdata/gaen/publish-with-certificate.json (see its README).
const (
	goldenNbf   = 1795867679
	goldenIat   = 1795867680
	goldenExp   = 1795867980
	goldenOnset = 2992608
)

func goldenNow() time.Time { return time.Unix(goldenIat+60, 0) }

// golden returns the golden upload and authorities that admit it: its
// signer key as kid 1 of iss-test / aud-test for com.example.ios.app.
func golden(t *testing.T) (*Request, []byte) {
	t.Helper()
	body, err := os.ReadFile("../testdata/gaen/publish-with-certificate.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest(body)
	if err != nil {
		t.Fatalf("golden upload refused: %v", err)
	}
	pemBytes, err := os.ReadFile("../testdata/gaen/publish-certificate-signer.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("signer key is not PEM")
	}
	return req, block.Bytes
}

func TestGoldenUploadAccepted(t *testing.T) {
	req, der := golden(t)
	v, err := Validate(req, fakeAuthorities{testIssuer: testAuthority(der)}, goldenNow())
	if err != nil {
		t.Fatalf("golden upload refused: %v", err)
	}
	if v.Issuer != testIssuer || v.AppID != testApp || v.ReportType != ReportTypeConfirmed || v.Traveler || v.StoreNothing {
		t.Errorf("verified = %+v", v)
	}
	if v.CertificateDigest != sha256.Sum256([]byte(req.VerificationPayload)) {
		t.Error("certificate digest is not the SHA-256 of the JWT text")
	}
	if v.Dropped != 0 || len(v.Warnings) != 0 || v.PartialFailure() != nil {
		t.Errorf("dropped %d, warnings %v", v.Dropped, v.Warnings)
	}
	if len(v.Keys) != len(req.Keys) {
		t.Fatalf("kept %d keys, want %d", len(v.Keys), len(req.Keys))
	}
	byStart := map[int32]ExposureKey{}
	for _, k := range req.Keys {
		byStart[k.IntervalNumber] = k
	}
	prev := int32(0)
	for _, k := range v.Keys {
		in, ok := byStart[k.GetRollingStart()]
		if !ok {
			t.Fatalf("unexpected key start %d", k.GetRollingStart())
		}
		data, _ := base64.StdEncoding.DecodeString(in.Key)
		wantDSO := k.GetRollingStart()/144 - goldenOnset/144 // onset from the certificate
		if string(k.GetKeyData()) != string(data) || k.GetRollingPeriod() != 144 ||
			k.GetTransmissionRisk() != int32(in.TransmissionRisk) || k.GetReportType() != 1 ||
			!k.GetHasDaysSinceOnset() || k.GetDaysSinceOnset() != wantDSO {
			t.Errorf("key %+v from %+v (want dso %d)", k, in, wantDSO)
		}
		if k.GetRollingStart() <= prev {
			t.Error("keys not sorted by start")
		}
		prev = k.GetRollingStart()
	}
}

// TestGoldenCertificateRefused changes one thing at a time around the
// golden upload and expects 401 health_authority_verification_certificate_invalid.
func TestGoldenCertificateRefused(t *testing.T) {
	_, der := golden(t)
	_, otherDER := newSigner(t)
	cases := []struct {
		name   string
		now    time.Time
		auth   func(a *fsmpb.Authority) fakeAuthorities // nil: the golden authority
		change func(r *Request)
		why    string // part of the message
	}{
		{name: "before nbf", now: time.Unix(goldenNbf, 0).Add(-certLeeway - time.Second), why: "not valid yet"},
		{name: "before iat", now: time.Unix(goldenIat, 0).Add(-certLeeway - time.Second), why: "used before issued"},
		{name: "after exp", now: time.Unix(goldenExp, 0).Add(certLeeway + time.Second), why: "expired"},
		{name: "wrong audience", auth: func(a *fsmpb.Authority) fakeAuthorities {
			a.Audience = "aud-other"
			return fakeAuthorities{a.Issuer: a}
		}, why: "audience mismatch"},
		{name: "unknown kid", auth: func(a *fsmpb.Authority) fakeAuthorities {
			a.Keys[0].Kid = "2"
			return fakeAuthorities{a.Issuer: a}
		}, why: "no active public key"},
		{name: "key not yet valid", auth: func(a *fsmpb.Authority) fakeAuthorities {
			a.Keys[0].ValidFromUnix = goldenNow().Unix() + 1
			return fakeAuthorities{a.Issuer: a}
		}, why: "no active public key"},
		{name: "key no longer valid", auth: func(a *fsmpb.Authority) fakeAuthorities {
			a.Keys[0].ValidThroughUnix = goldenNow().Unix()
			return fakeAuthorities{a.Issuer: a}
		}, why: "no active public key"},
		{name: "kid names another key", auth: func(a *fsmpb.Authority) fakeAuthorities {
			a.Keys = []*fsmpb.AuthorityKey{{Kid: "1", PublicKeyDer: otherDER}, {Kid: "2", PublicKeyDer: der}}
			return fakeAuthorities{a.Issuer: a}
		}, why: "signature is invalid"},
		{name: "unknown issuer", auth: func(a *fsmpb.Authority) fakeAuthorities {
			a.Issuer = "iss-other"
			return fakeAuthorities{a.Issuer: a}
		}, why: "issuer not found"},
		{name: "app not allowed by the issuer", auth: func(a *fsmpb.Authority) fakeAuthorities {
			a.AppIds = []string{"com.example.other"}
			return fakeAuthorities{a.Issuer: a, "iss-2": {Issuer: "iss-2", Audience: "x", AppIds: []string{testApp}}}
		}, why: "has not authorized"},
		{name: "tampered risk", change: func(r *Request) { r.Keys[3].TransmissionRisk = 1 }, why: "HMAC mismatch"},
		{name: "tampered start", change: func(r *Request) { r.Keys[0].IntervalNumber += 144 }, why: "HMAC mismatch"},
		{name: "tampered key", change: func(r *Request) { r.Keys[5].Key = strings.Replace(r.Keys[5].Key, "O8l", "O8m", 1) }, why: "HMAC mismatch"},
		{name: "key removed", change: func(r *Request) { r.Keys = r.Keys[1:] }, why: "HMAC mismatch"},
		{name: "key added", change: func(r *Request) {
			r.Keys = append(r.Keys, ExposureKey{Key: "AAAAAAAAAAAAAAAAAAAAAA==", IntervalNumber: 2993040, IntervalCount: 72})
		}, why: "HMAC mismatch"},
		{name: "zero keys", change: func(r *Request) { r.Keys = nil }, why: "zero exposure keys"},
		{name: "wrong hmac key", change: func(r *Request) { r.HMACKey = base64.StdEncoding.EncodeToString(make([]byte, 32)) }, why: "HMAC mismatch"},
		{name: "bad hmac key", change: func(r *Request) { r.HMACKey = "%%%" }, why: "HMAC secret"},
		{name: "no certificate", change: func(r *Request) { r.VerificationPayload = "" }, why: "missing verification certificate"},
		{name: "garbage certificate", change: func(r *Request) { r.VerificationPayload = "a.b.c" }, why: "malformed"},
		{name: "tampered signature", change: func(r *Request) {
			i := strings.LastIndexByte(r.VerificationPayload, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(r.VerificationPayload[i+1:])
			sig[10] ^= 1
			r.VerificationPayload = r.VerificationPayload[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
		}, why: "signature is invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, der := golden(t)
			auth := fakeAuthorities{testIssuer: testAuthority(der)}
			if tc.auth != nil {
				auth = tc.auth(testAuthority(der))
			}
			if tc.change != nil {
				tc.change(req)
			}
			now := tc.now
			if now.IsZero() {
				now = goldenNow()
			}
			v, err := Validate(req, auth, now)
			e := wantError(t, err, http.StatusUnauthorized, CodeVerificationCertificateInvalid)
			if !strings.Contains(e.Message, tc.why) {
				t.Errorf("message %q does not say %q", e.Message, tc.why)
			}
			if v != nil {
				t.Error("refused upload returned a result")
			}
		})
	}
}

// TestGoldenClockWindow accepts the golden upload anywhere inside its
// validity window widened by the leeway.
func TestGoldenClockWindow(t *testing.T) {
	for _, now := range []time.Time{
		time.Unix(goldenIat, 0).Add(-certLeeway), // iat and nbf within leeway
		time.Unix(goldenNbf, 0),
		time.Unix(goldenExp, 0),
		time.Unix(goldenExp, 0).Add(certLeeway - time.Second),
	} {
		req, der := golden(t)
		if _, err := Validate(req, fakeAuthorities{testIssuer: testAuthority(der)}, now); err != nil {
			t.Errorf("at %d: %v", now.Unix(), err)
		}
	}
}

func TestUnknownHealthAuthorityID(t *testing.T) {
	req, der := golden(t)
	req.HealthAuthorityID = "com.example.unknown"
	_, err := Validate(req, fakeAuthorities{testIssuer: testAuthority(der)}, goldenNow())
	wantError(t, err, http.StatusUnauthorized, CodeUnknownHealthAuthorityID)

	// Checked before the certificate: a request with nothing else is still
	// refused for its id.
	_, err = Validate(&Request{HealthAuthorityID: "x"}, fakeAuthorities{}, goldenNow())
	wantError(t, err, http.StatusUnauthorized, CodeUnknownHealthAuthorityID)
}

// TestSignCertificateMatchesGolden signs the golden certificate's claims and
// expects the same header and claims text (names, order, encoding), except
// nbf: the golden signer (the reference's example-verification-signing tool)
// back-dates by 1 s where SignCertificate back-dates by 5 s as verification
// servers do. The signature is randomized, so it is not compared.
func TestSignCertificateMatchesGolden(t *testing.T) {
	req, _ := golden(t)
	signer, _ := newSigner(t)
	secret, err := DecodeBase64(req.HMACKey)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := TEKMAC(secret, req.Keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SignCertificate(signer, Claims{
		Issuer: testIssuer, Audience: testAudience, Kid: testKid, ReportType: ReportTypeConfirmed,
		SymptomOnsetInterval: goldenOnset, TEKMAC: mac, IssuedAt: time.Unix(goldenIat, 0),
		TTL: (goldenExp - goldenIat) * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	g, w := strings.Split(got, "."), strings.Split(req.VerificationPayload, ".")
	if len(g) != 3 || g[0] != w[0] {
		t.Fatalf("header %q, want %q", g[0], w[0])
	}
	gotClaims, err := base64.RawURLEncoding.DecodeString(g[1])
	if err != nil {
		t.Fatal(err)
	}
	wantClaims, err := base64.RawURLEncoding.DecodeString(w[1])
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(wantClaims), `"nbf":1795867679`, `"nbf":1795867675`, 1)
	if string(gotClaims) != want {
		t.Errorf("claims\n got %s\nwant %s", gotClaims, want)
	}
}

func TestSignCertificateRefusesBadClaims(t *testing.T) {
	signer, _ := newSigner(t)
	ok := Claims{Issuer: "i", Audience: "a", Kid: "k", ReportType: ReportTypeLikely, TEKMAC: "m", IssuedAt: testNow()}
	if _, err := SignCertificate(signer, ok); err != nil {
		t.Fatalf("valid claims refused: %v", err)
	}
	for name, change := range map[string]func(*Claims){
		"no issuer":      func(c *Claims) { c.Issuer = "" },
		"no audience":    func(c *Claims) { c.Audience = "" },
		"no kid":         func(c *Claims) { c.Kid = "" },
		"report type":    func(c *Claims) { c.ReportType = "positive" },
		"no tekmac":      func(c *Claims) { c.TEKMAC = "" },
		"no issued-at":   func(c *Claims) { c.IssuedAt = time.Time{} },
		"negative onset": func(c *Claims) { c.SymptomOnsetInterval = -1 },
		"negative ttl":   func(c *Claims) { c.TTL = -time.Second },
	} {
		c := ok
		change(&c)
		if _, err := SignCertificate(signer, c); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	if _, err := SignCertificate(nil, ok); err == nil {
		t.Error("signed without a key")
	}
}

// TestRoundTrip signs certificates with SignCertificate for each report type
// and expects Validate to accept them with the matching fields.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		reportType string
		code       int32
		risk       int32 // filled for a risk of 0
	}{
		{ReportTypeConfirmed, 1, 2},
		{ReportTypeLikely, 2, 4},
		{ReportTypeUserReport, 3, 0},
		{ReportTypeNegative, 5, 6},
	} {
		t.Run(tc.reportType, func(t *testing.T) {
			u := newUploader(t)
			keys := []ExposureKey{u.key(3, 0), u.key(2, 7), u.key(1, 0)}
			req := u.request(keys, tc.reportType, 0)
			req.Traveler = true
			v, err := Validate(req, u.auth, u.now)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if v.ReportType != tc.reportType || !v.Traveler || v.StoreNothing != (tc.reportType == ReportTypeNegative) || len(v.Keys) != 3 {
				t.Fatalf("verified = %+v", v)
			}
			for i, k := range v.Keys {
				wantRisk := tc.risk
				if keys[i].TransmissionRisk != 0 {
					wantRisk = int32(keys[i].TransmissionRisk)
				}
				if k.GetReportType() != tc.code || k.GetTransmissionRisk() != wantRisk || k.GetRollingStart() != keys[i].IntervalNumber {
					t.Errorf("key %d = %+v, want report %d risk %d", i, k, tc.code, wantRisk)
				}
			}
		})
	}
}

// TestCertificateForms covers what only hand-made certificates can show.
func TestCertificateForms(t *testing.T) {
	u := newUploader(t)
	keys := []ExposureKey{u.key(2, 0), u.key(1, 0)}
	secret := []byte("0123456789abcdef0123456789abcdef")
	hmacKey := base64.RawURLEncoding.EncodeToString(secret) // URL alphabet, unpadded: accepted
	macs, err := allowedTEKMACs(secret, keys)
	if err != nil {
		t.Fatal(err)
	}
	iat := u.now.Add(-time.Minute)
	payload := func(reportType string, mac []byte) certPayload {
		return certPayload{
			ReportType: reportType, TEKMAC: base64.StdEncoding.EncodeToString(mac), Audience: testAudience,
			ExpiresAt: iat.Add(15 * time.Minute).Unix(), IssuedAt: iat.Unix(), Issuer: testIssuer, NotBefore: iat.Unix() - 5,
		}
	}
	sign := func(p any) string {
		s, err := signJWT(u.signer, testKid, p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withRisk := []ExposureKey{keys[0], keys[1]}
	withRisk[1].TransmissionRisk = 3

	cases := []struct {
		name string
		jwt  string
		keys []ExposureKey
		ok   bool
		why  string // part of the message of a refusal
	}{
		{name: "3-segment tekmac with all risks 0", jwt: sign(payload(ReportTypeConfirmed, macs[1])), keys: keys, ok: true},
		{name: "4-segment tekmac with all risks 0", jwt: sign(payload(ReportTypeConfirmed, macs[0])), keys: keys, ok: true},
		{name: "3-segment tekmac with a risk", jwt: sign(payload(ReportTypeConfirmed, macs[1])), keys: withRisk, why: "HMAC mismatch"},
		{name: "invalid report type", jwt: sign(payload("positive", macs[0])), keys: keys, why: "invalid report type"},
		{name: "empty report type", jwt: sign(payload("", macs[0])), keys: keys, why: "invalid report type"},
		{name: "no exp", jwt: sign(map[string]any{
			"reportType": ReportTypeConfirmed, "tekmac": base64.StdEncoding.EncodeToString(macs[0]),
			"aud": testAudience, "iat": iat.Unix(), "iss": testIssuer, "nbf": iat.Unix(),
		}), keys: keys, why: "exp claim is required"},
		{name: "aud as array of one", jwt: sign(map[string]any{
			"reportType": ReportTypeConfirmed, "tekmac": base64.StdEncoding.EncodeToString(macs[0]),
			"aud": []string{testAudience}, "exp": iat.Add(time.Hour).Unix(), "iat": iat.Unix(), "iss": testIssuer,
		}), keys: keys, ok: true},
		{name: "aud with an extra value", jwt: sign(map[string]any{
			"reportType": ReportTypeConfirmed, "tekmac": base64.StdEncoding.EncodeToString(macs[0]),
			"aud": []string{testAudience, "x"}, "exp": iat.Add(time.Hour).Unix(), "iat": iat.Unix(), "iss": testIssuer,
		}), keys: keys, why: "audience mismatch"},
		{name: "no kid", jwt: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
				"reportType": ReportTypeConfirmed, "tekmac": base64.StdEncoding.EncodeToString(macs[0]),
				"aud": testAudience, "exp": iat.Add(time.Hour).Unix(), "iat": iat.Unix(), "iss": testIssuer,
			})
			s, err := tok.SignedString(u.signer)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), keys: keys, why: "'kid'"},
		{name: "HS256 with the public key as secret", jwt: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"reportType": ReportTypeConfirmed, "tekmac": base64.StdEncoding.EncodeToString(macs[0]),
				"aud": testAudience, "exp": iat.Add(time.Hour).Unix(), "iat": iat.Unix(), "iss": testIssuer,
			})
			tok.Header["kid"] = testKid
			s, err := tok.SignedString(u.auth[testIssuer].GetKeys()[0].GetPublicKeyDer())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), keys: keys, why: "signing method HS256 is invalid"},
		{name: "alg none", jwt: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
				"reportType": ReportTypeConfirmed, "tekmac": base64.StdEncoding.EncodeToString(macs[0]),
				"aud": testAudience, "exp": iat.Add(time.Hour).Unix(), "iat": iat.Unix(), "iss": testIssuer,
			})
			tok.Header["kid"] = testKid
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), keys: keys, why: "signing method none is invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &Request{Keys: tc.keys, HealthAuthorityID: testApp, VerificationPayload: tc.jwt, HMACKey: hmacKey}
			_, err := Validate(req, u.auth, u.now)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := wantError(t, err, http.StatusUnauthorized, CodeVerificationCertificateInvalid)
			if !strings.Contains(e.Message, tc.why) {
				t.Errorf("message %q does not say %q", e.Message, tc.why)
			}
		})
	}
}
