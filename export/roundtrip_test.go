package export

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export/exportpb"
)

func key(b byte, start, period, risk, report int32) Key {
	var k Key
	for i := range k.Data {
		k.Data[i] = b + byte(i)
	}
	k.RollingStart, k.RollingPeriod, k.TransmissionRisk, k.ReportType = start, period, risk, report
	return k
}

func onset(k Key, days int32) Key {
	k.DaysSinceOnset, k.HasDaysSinceOnset = days, true
	return k
}

// sampleFile has every kind of field value, out of order.
func sampleFile() File {
	return File{
		Start:     time.Unix(1_600_000_000, 0).UTC(),
		End:       time.Unix(1_600_003_600, 0).UTC(),
		Region:    "CH",
		BatchNum:  2,
		BatchSize: 3,
		Keys: []Key{
			onset(key(0x90, 2_660_000, 144, 2, ReportTypeConfirmedTest), 0),
			key(0x10, 2_660_144, 144, 0, ReportTypeUnknown),
			onset(key(0x50, 2_660_288, 37, 4, ReportTypeConfirmedClinical), -3),
			onset(key(0x30, 2_660_432, 1, 8, ReportTypeSelfReport), 14),
			key(0x70, 2_660_576, 143, 6, ReportTypeRecursive),
			key(0x20, 0, 144, 1, ReportTypeConfirmedTest), // start 0 is omitted on the wire
		},
		RevisedKeys: []Key{
			onset(key(0xa0, 2_660_000, 144, 2, ReportTypeRevoked), -14),
			key(0x05, 2_660_144, 100, 4, ReportTypeConfirmedTest),
		},
	}
}

func sortedKeys(k []Key) []Key {
	k = slices.Clone(k)
	slices.SortFunc(k, compareKeys)
	return k
}

func TestRoundTripPreservesEveryField(t *testing.T) {
	priv := newKey(t)
	in := sampleFile()
	raw, err := Encode(in, []SigningKey{{Private: priv, KeyID: "228", KeyVersion: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Keys, want.RevisedKeys = sortedKeys(in.Keys), sortedKeys(in.RevisedKeys)
	if !reflect.DeepEqual(d.File, want) {
		t.Fatalf("decoded %+v\nwant    %+v", d.File, want)
	}
	if err := d.Verify(&priv.PublicKey, "228", "v1"); err != nil {
		t.Fatal(err)
	}
	if s := d.Signatures; len(s) != 1 || s[0].BatchNum != 2 || s[0].BatchSize != 3 || s[0].Algorithm != SignatureAlgorithm {
		t.Errorf("signatures %+v", s)
	}

	// On the wire: optional fields present exactly when they carry information.
	var msg exportpb.TemporaryExposureKeyExport
	if err := proto.Unmarshal(d.Bin[len(Header):], &msg); err != nil {
		t.Fatal(err)
	}
	for i, m := range append(msg.Keys, msg.RevisedKeys...) {
		k := append(want.Keys, want.RevisedKeys...)[i]
		if got := m.RollingPeriod != nil; got != (k.RollingPeriod != 144) {
			t.Errorf("key %x: rolling_period on wire = %v, period %d", k.Data, got, k.RollingPeriod)
		}
		if got := m.DaysSinceOnsetOfSymptoms != nil; got != k.HasDaysSinceOnset {
			t.Errorf("key %x: days_since_onset on wire = %v, want %v", k.Data, got, k.HasDaysSinceOnset)
		}
		if got := m.ReportType != nil; got != (k.ReportType != 0) {
			t.Errorf("key %x: report_type on wire = %v, report type %d", k.Data, got, k.ReportType)
		}
		if got := m.RollingStartIntervalNumber != nil; got != (k.RollingStart != 0) {
			t.Errorf("key %x: rolling_start on wire = %v, start %d", k.Data, got, k.RollingStart)
		}
		if m.TransmissionRiskLevel == nil {
			t.Errorf("key %x: transmission_risk_level missing", k.Data)
		}
	}
	if si := msg.SignatureInfos; len(si) != 1 || si[0].GetVerificationKeyId() != "228" || si[0].GetVerificationKeyVersion() != "v1" {
		t.Errorf("signature_infos %v", si)
	}
}

func TestEncodeDeterministic(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	keys := []SigningKey{{Private: k2, KeyID: "228", KeyVersion: "v2"}, {Private: k1, KeyID: "228", KeyVersion: "v1"}}
	in := sampleFile()
	a, err := Encode(in, keys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(in, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two encodes of the same input differ")
	}
	shuffled := sampleFile()
	mrand.Shuffle(len(shuffled.Keys), func(i, j int) { shuffled.Keys[i], shuffled.Keys[j] = shuffled.Keys[j], shuffled.Keys[i] })
	slices.Reverse(shuffled.RevisedKeys)
	c, err := Encode(shuffled, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Fatal("key order of the input changed the output")
	}
	if !reflect.DeepEqual(in, sampleFile()) {
		t.Fatal("Encode modified its input")
	}

	d, err := Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Signatures) != 2 || d.Signatures[0].KeyVersion != "v2" || d.Signatures[1].KeyVersion != "v1" {
		t.Fatalf("signatures %+v, want v2 then v1", d.Signatures)
	}
	for _, c := range []struct {
		pub     *ecdsa.PublicKey
		version string
		want    error
	}{
		{&k1.PublicKey, "v1", nil},
		{&k2.PublicKey, "v2", nil},
		{&k1.PublicKey, "v2", ErrBadSignature},
		{&k2.PublicKey, "v3", ErrNoSignature},
	} {
		if err := d.Verify(c.pub, "228", c.version); !errors.Is(err, c.want) {
			t.Errorf("verify %s: %v, want %v", c.version, err, c.want)
		}
	}
}

// DESIGN.md relies on this: ecdsa.PrivateKey.Sign with a nil random source
// signs deterministically (RFC 6979) in Go 1.26.
func TestSignNilRandIsDeterministicAndValid(t *testing.T) {
	priv := newKey(t)
	digest := sha256.Sum256([]byte("export.bin"))
	a, err := priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two nil-rand signatures differ")
	}
	if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], a) {
		t.Fatal("deterministic signature does not verify")
	}
	other := sha256.Sum256([]byte("export.bin'"))
	if ecdsa.VerifyASN1(&priv.PublicKey, other[:], a) {
		t.Fatal("signature verifies over another digest")
	}
}

// The archive looks like the reference's: export.bin then export.sig,
// deflated, zero (1980) modification time.
func TestEncodeZipLayout(t *testing.T) {
	raw, err := Encode(sampleFile(), []SigningKey{{Private: newKey(t), KeyID: "a", KeyVersion: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	files, contents := unzipAll(t, raw)
	if len(files) != 2 || files[0].Name != binName || files[1].Name != sigName {
		t.Fatalf("entries %v", files)
	}
	for _, f := range files {
		if f.Method != zip.Deflate || f.ModifiedDate != 0 || f.ModifiedTime != 0 || len(f.Extra) != 0 {
			t.Errorf("%s: method %d, date %d, time %d, extra %d bytes", f.Name, f.Method, f.ModifiedDate, f.ModifiedTime, len(f.Extra))
		}
	}
	if !bytes.HasPrefix(contents[binName], []byte(Header)) {
		t.Errorf("export.bin starts %q", contents[binName][:16])
	}
}

func TestEncodeRejects(t *testing.T) {
	good := SigningKey{Private: newKey(t), KeyID: "228", KeyVersion: "v1"}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withKey := func(k Key) File { f := sampleFile(); f.Keys = append(f.Keys, k); return f }
	tooMany := sampleFile()
	tooMany.Keys = make([]Key, MaxKeysPerFile+1)
	for _, c := range []struct {
		name string
		f    File
		keys []SigningKey
	}{
		{"no signing key", sampleFile(), nil},
		{"11 signing keys", sampleFile(), slices.Repeat([]SigningKey{good}, 11)},
		{"nil private key", sampleFile(), []SigningKey{{KeyID: "a", KeyVersion: "1"}}},
		{"P-384 key", sampleFile(), []SigningKey{{Private: p384, KeyID: "a", KeyVersion: "1"}}},
		{"empty key id", sampleFile(), []SigningKey{{Private: good.Private, KeyVersion: "1"}}},
		{"empty key version", sampleFile(), []SigningKey{{Private: good.Private, KeyID: "a"}}},
		{"same id and version twice", sampleFile(), []SigningKey{good, good}},
		{"batch 0", func() File { f := sampleFile(); f.BatchNum = 0; return f }(), []SigningKey{good}},
		{"batch 4 of 3", func() File { f := sampleFile(); f.BatchNum = 4; return f }(), []SigningKey{good}},
		{"end before start", func() File { f := sampleFile(); f.End = f.Start.Add(-time.Second); return f }(), []SigningKey{good}},
		{"start before 1970", func() File { f := sampleFile(); f.Start = time.Unix(-1, 0); return f }(), []SigningKey{good}},
		{"too many keys", tooMany, []SigningKey{good}},
		{"rolling period 0", withKey(key(1, 1, 0, 0, 0)), []SigningKey{good}},
		{"rolling period 145", withKey(key(1, 1, 145, 0, 0)), []SigningKey{good}},
		{"negative rolling start", withKey(key(1, -1, 144, 0, 0)), []SigningKey{good}},
		{"transmission risk 9", withKey(key(1, 1, 144, 9, 0)), []SigningKey{good}},
		{"report type 6", withKey(key(1, 1, 144, 0, 6)), []SigningKey{good}},
		{"days since onset 15", withKey(onset(key(1, 1, 144, 0, 1), 15)), []SigningKey{good}},
		{"revised key invalid", func() File { f := sampleFile(); f.RevisedKeys[0].RollingPeriod = 0; return f }(), []SigningKey{good}},
	} {
		if out, err := Encode(c.f, c.keys); err == nil {
			t.Errorf("%s: encoded %d bytes, want an error", c.name, len(out))
		}
	}
}
