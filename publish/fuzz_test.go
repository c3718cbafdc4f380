package publish

import (
	"encoding/base64"
	"encoding/pem"
	"os"
	"slices"
	"testing"
)

// Any upload body either is refused with an *Error or verifies against
// the golden authority; a verified upload holds only keys the rules admit.
func FuzzPublish(f *testing.F) {
	body, err := os.ReadFile("../testdata/gaen/publish-with-certificate.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte(`{"temporaryExposureKeys":[],"healthAuthorityID":"x"}`))
	f.Add([]byte(`{`))
	pemBytes, err := os.ReadFile("../testdata/gaen/publish-certificate-signer.pub.pem")
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	auth := fakeAuthorities{testIssuer: testAuthority(block.Bytes)}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRequest(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("refusal %T %v is not an *Error", err, err)
			}
			return
		}
		v, err := Validate(req, auth, goldenNow())
		if err != nil {
			return
		}
		if len(v.Keys) > maxKeysPerPublish {
			t.Fatalf("%d keys admitted", len(v.Keys))
		}
	})
}

// Any revision token an app sends either is refused or opens (it was
// sealed under this key: AEAD, see TestRevisionTokenRoundTrip for tampering) to at
// most TokenMaxKeys keys, the same however its base64 is spelled.
func FuzzRevisionToken(f *testing.F) {
	key := RevisionTokenKey("fuzz")
	tok, err := SealRevisionToken(key, []RevisableKey{{Key: [16]byte{1}, Start: 100, Period: 144}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := OpenRevisionToken(key, s)
		if err != nil {
			return
		}
		if len(keys) > TokenMaxKeys {
			t.Fatalf("a token opened to %d keys", len(keys))
		}
		raw, _ := DecodeBase64(s)
		again, err := OpenRevisionToken(key, base64.StdEncoding.EncodeToString(raw))
		if err != nil || !slices.Equal(again, keys) {
			t.Fatalf("%q opened to %v, its canonical spelling to %v (%v)", s, keys, again, err)
		}
	})
}
