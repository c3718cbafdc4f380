package publish

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestTEKMACVector(t *testing.T) {
	secret := []byte("0123456789abcdef")
	keys := []ExposureKey{{Key: "Fy/EgOWYSQw0F3YEM5sVQw==", IntervalNumber: 2649980, IntervalCount: 1}}
	const (
		wantFull  = "cccbfdadf03cd2b1ae3b44963d224ac24149d10d88a16135bdf7ca1a139ad9d8"
		wantShort = "60d2aef7b404906b03a3b67d8f4586ce6e732e33bffeeaaae3b3efbba13e7bcc"
	)

	got, err := TEKMAC(secret, keys)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(got)
	if err != nil {
		t.Fatalf("TEKMAC is not standard base64: %v", err)
	}
	if hex.EncodeToString(raw) != wantFull {
		t.Errorf("TEKMAC = %x, want %s", raw, wantFull)
	}

	macs, err := allowedTEKMACs(secret, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(macs) != 2 || hex.EncodeToString(macs[0]) != wantFull || hex.EncodeToString(macs[1]) != wantShort {
		t.Errorf("allowed tekmacs = %x, want [%s %s]", macs, wantFull, wantShort)
	}

	keys[0].TransmissionRisk = 1
	macs, err = allowedTEKMACs(secret, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(macs) != 1 {
		t.Errorf("with a non-zero risk got %d allowed tekmacs, want only the 4-segment form", len(macs))
	}
}

func TestTEKMACSortsWithoutReordering(t *testing.T) {
	secret := []byte("secret")
	a := ExposureKey{Key: "AAAAAAAAAAAAAAAAAAAAAA==", IntervalNumber: 10, IntervalCount: 144, TransmissionRisk: 1}
	b := ExposureKey{Key: "BBBBBBBBBBBBBBBBBBBBBB==", IntervalNumber: 154, IntervalCount: 144, TransmissionRisk: 2}
	in := []ExposureKey{b, a}
	m1, err := TEKMAC(secret, in)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := TEKMAC(secret, []ExposureKey{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 {
		t.Errorf("tekmac depends on key order: %s vs %s", m1, m2)
	}
	if in[0] != b {
		t.Error("TEKMAC reordered the caller's slice")
	}
	if _, err := TEKMAC(secret, nil); err == nil {
		t.Error("TEKMAC of zero keys succeeded")
	}
}

func TestDecodeBase64Alphabets(t *testing.T) {
	want := []byte{0xfb, 0xff, 0xbf, 0x01}
	for _, s := range []string{"+/+/AQ==", "+/+/AQ", "-_-_AQ==", "-_-_AQ"} {
		got, err := DecodeBase64(s)
		if err != nil || string(got) != string(want) {
			t.Errorf("DecodeBase64(%q) = %x, %v; want %x", s, got, err, want)
		}
	}
	if _, err := DecodeBase64("not base64!"); err == nil {
		t.Error("DecodeBase64 accepted garbage")
	}
}
