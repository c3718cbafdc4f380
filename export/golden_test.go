package export

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

// goldenFiles are the reference server's exports in testdata/gaen, with the
// key that signed them (README.md there).
var goldenFiles = []struct {
	zip, pub, keyID, version, otherPub string
	keys                               int
}{
	{"example-2-records.zip", "example-2-records.pub.pem", "some_id", "1", "export-key-310-v1.pub.pem", 2},
	{"generated-250-1-of-3.zip", "export-key-310-v1.pub.pem", "310", "v1", "example-2-records.pub.pem", 100},
	{"generated-250-2-of-3.zip", "export-key-310-v1.pub.pem", "310", "v1", "example-2-records.pub.pem", 100},
	{"generated-250-3-of-3.zip", "export-key-310-v1.pub.pem", "310", "v1", "example-2-records.pub.pem", 50},
	{"server-export-5617-keys.zip", "export-key-310-v1.pub.pem", "310", "v1", "example-2-records.pub.pem", 5617},
}

func TestGoldenDecodeAndVerify(t *testing.T) {
	for _, g := range goldenFiles {
		t.Run(g.zip, func(t *testing.T) {
			raw := readGolden(t, g.zip)
			d, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(d.File.Keys); got != g.keys {
				t.Errorf("keys = %d, want %d", got, g.keys)
			}
			if d.File.Region != "US" {
				t.Errorf("region = %q, want US", d.File.Region)
			}
			if !slices.IsSortedFunc(d.File.Keys, func(a, b Key) int { return bytes.Compare(a.Data[:], b.Data[:]) }) {
				t.Error("keys not sorted by raw bytes")
			}
			if len(d.Signatures) != 1 || d.Signatures[0].Algorithm != SignatureAlgorithm {
				t.Errorf("signatures = %+v, want one %s", d.Signatures, SignatureAlgorithm)
			}
			pub := goldenPub(t, g.pub)
			if err := d.Verify(pub, g.keyID, g.version); err != nil {
				t.Fatalf("verify with the right key: %v", err)
			}

			tampered := *d
			tampered.Bin = slices.Clone(d.Bin)
			tampered.Bin[len(tampered.Bin)/2] ^= 0x01
			_, entries := unzipAll(t, raw)
			rezipped, err := Decode(makeZip(t, entry{name: binName, data: tampered.Bin}, entry{name: sigName, data: entries[sigName]}))
			if err != nil {
				t.Fatalf("decode tampered zip: %v", err)
			}
			for _, c := range []struct {
				name           string
				d              *Decoded
				pub            string
				keyID, version string
				want           error
			}{
				{"wrong public key", d, g.otherPub, g.keyID, g.version, ErrBadSignature},
				{"wrong key id", d, g.pub, g.keyID + "x", g.version, ErrNoSignature},
				{"wrong key version", d, g.pub, g.keyID, g.version + "x", ErrNoSignature},
				{"tampered export.bin byte", &tampered, g.pub, g.keyID, g.version, ErrBadSignature},
				{"tampered export.bin re-zipped", rezipped, g.pub, g.keyID, g.version, ErrBadSignature},
			} {
				if err := c.d.Verify(goldenPub(t, c.pub), c.keyID, c.version); !errors.Is(err, c.want) {
					t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
				}
			}
		})
	}
}

// Our encoder writes the reference's export.bin byte for byte: same field
// order, same omissions (rolling_period 144, rolling start 0), same sort.
func TestGoldenBinReencodesIdentically(t *testing.T) {
	for _, g := range goldenFiles {
		t.Run(g.zip, func(t *testing.T) {
			d, err := Decode(readGolden(t, g.zip))
			if err != nil {
				t.Fatal(err)
			}
			f := d.File
			slices.Reverse(f.Keys) // input order must not matter
			if err := checkFile(&f); err != nil {
				t.Fatalf("golden content fails our checks: %v", err)
			}
			bin, err := marshalBin(&f, []SigningKey{{KeyID: d.Signatures[0].KeyID, KeyVersion: d.Signatures[0].KeyVersion}})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bin, d.Bin) {
				t.Fatalf("re-encoded export.bin differs from the reference's (%d vs %d bytes)", len(bin), len(d.Bin))
			}
		})
	}
}

func TestGoldenExampleKeysMatchJSON(t *testing.T) {
	var body struct {
		TemporaryExposureKeys []struct {
			Key                                                 string
			RollingStartNumber, RollingPeriod, TransmissionRisk int32
		}
	}
	if err := json.Unmarshal(readGolden(t, "example-2-records.keys.json"), &body); err != nil {
		t.Fatal(err)
	}
	var want []Key
	for _, k := range body.TemporaryExposureKeys {
		data, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil || len(data) != 16 {
			t.Fatalf("key %q: %v", k.Key, err)
		}
		want = append(want, Key{Data: [16]byte(data), RollingStart: k.RollingStartNumber, RollingPeriod: k.RollingPeriod, TransmissionRisk: k.TransmissionRisk})
	}
	d, err := Decode(readGolden(t, "example-2-records.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 || !slices.Equal(d.File.Keys, want) {
		t.Fatalf("keys = %+v\nwant %+v", d.File.Keys, want)
	}
	if d.File.BatchNum != 1 || d.File.BatchSize != 1 {
		t.Errorf("batch %d of %d, want 1 of 1", d.File.BatchNum, d.File.BatchSize)
	}
}

// The reference splits a window over files numbered 1 of 1 each, bumping
// end_timestamp by the file number instead.
func TestGoldenGeneratedSplit(t *testing.T) {
	var first *Decoded
	seen := map[[16]byte]bool{}
	for i, name := range []string{"generated-250-1-of-3.zip", "generated-250-2-of-3.zip", "generated-250-3-of-3.zip"} {
		d, err := Decode(readGolden(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = d
		}
		f := d.File
		if f.BatchNum != 1 || f.BatchSize != 1 {
			t.Errorf("%s: batch %d of %d, want 1 of 1", name, f.BatchNum, f.BatchSize)
		}
		if s := d.Signatures[0]; s.BatchNum != 1 || s.BatchSize != 1 {
			t.Errorf("%s: signature batch %d of %d, want 1 of 1", name, s.BatchNum, s.BatchSize)
		}
		if !f.Start.Equal(first.File.Start) || f.End.Sub(first.File.End) != time.Duration(i)*time.Second {
			t.Errorf("%s: window %v..%v, want start %v, end %v+%ds", name, f.Start, f.End, first.File.Start, first.File.End, i)
		}
		for _, k := range f.Keys {
			if seen[k.Data] {
				t.Errorf("%s: key %x repeated", name, k.Data)
			}
			seen[k.Data] = true
			if k.RollingPeriod != DefaultRollingPeriod || k.HasDaysSinceOnset || k.ReportType != ReportTypeUnknown {
				t.Errorf("%s: key %+v, want period 144, no onset, no report type", name, k)
			}
		}
	}
	if len(seen) != 250 {
		t.Errorf("%d distinct keys, want 250", len(seen))
	}
}

func TestGoldenServerExport(t *testing.T) {
	d, err := Decode(readGolden(t, "server-export-5617-keys.zip"))
	if err != nil {
		t.Fatal(err)
	}
	f := d.File
	if len(f.Keys) != 5617 || len(f.RevisedKeys) != 0 || f.Region != "US" {
		t.Fatalf("%d keys, %d revised, region %q; want 5617, 0, US", len(f.Keys), len(f.RevisedKeys), f.Region)
	}
	if w := f.End.Sub(f.Start); w != 5*time.Minute {
		t.Errorf("window %v, want 5m", w)
	}
	confirmed, onset := 0, 0
	for _, k := range f.Keys {
		if k.ReportType == ReportTypeConfirmedTest {
			confirmed++
		}
		if k.HasDaysSinceOnset {
			onset++
		}
	}
	// Counted independently with `protoc --decode_raw`.
	if confirmed != 2814 {
		t.Errorf("%d CONFIRMED_TEST keys, want 2814", confirmed)
	}
	if onset == 0 {
		t.Error("no key has days since onset")
	}
}

// Our zip container matches the reference's too: the same two entries
// re-zipped by zipEntries give the golden archive's bytes, so with the
// re-encode test above a whole reference export is reproduced bit for bit
// (bar the randomized signature).
func TestGoldenZipContainer(t *testing.T) {
	for _, g := range goldenFiles {
		raw := readGolden(t, g.zip)
		files, entries := unzipAll(t, raw)
		if len(files) != 2 || files[0].Name != binName || files[1].Name != sigName {
			t.Fatalf("%s: entries %v", g.zip, files)
		}
		out, err := zipEntries(entries[binName], entries[sigName])
		if err != nil {
			t.Fatal(err)
		}
		// If this fails after a Go upgrade, compress/flate changed its
		// output: exports of nodes on different Go versions would differ.
		if !bytes.Equal(out, raw) {
			t.Errorf("%s: re-zipped %d bytes differ from the reference's %d", g.zip, len(out), len(raw))
		}
	}
}
