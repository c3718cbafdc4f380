package export

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"
)

// Another party rebuilds a file byte for byte from its content and its
// export.sig, without the private key.
func TestRebuild(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := File{Start: time.Unix(1_700_000_000, 0), End: time.Unix(1_700_000_600, 0), Region: "A", BatchNum: 1, BatchSize: 1,
		Keys:        []Key{{Data: [16]byte{2}, RollingStart: 2_800_000, RollingPeriod: 144, ReportType: 1}, {Data: [16]byte{1}, RollingStart: 2_800_144, RollingPeriod: 12}},
		RevisedKeys: []Key{{Data: [16]byte{3}, RollingStart: 2_799_856, RollingPeriod: 144, ReportType: ReportTypeRevoked}}}
	orig, err := Encode(f, []SigningKey{{Private: priv, KeyID: "A", KeyVersion: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(orig)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Rebuild(f, d.Sig)
	if err != nil || !bytes.Equal(again, orig) {
		t.Fatalf("rebuilt file differs (err %v)", err)
	}
	other := f
	other.Region = "B"
	changed, _ := Rebuild(other, d.Sig)
	dc, err := Decode(changed)
	if err != nil || dc.Verify(&priv.PublicKey, "A", "v1") == nil {
		t.Fatalf("a rebuilt file with other content verifies: %v", err)
	}
	if _, err := Rebuild(f, []byte("garbage")); err == nil {
		t.Fatal("garbage export.sig accepted")
	}
}
