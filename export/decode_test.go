package export

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export/exportpb"
)

func marshalPB(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawStored is an entry written as stored bytes with the sizes and CRC the
// test claims, true or not.
func rawStored(name string, data []byte, size uint64, crc uint32) entry {
	return entry{name: name, data: data, raw: &zip.FileHeader{
		Name: name, Method: zip.Store, CRC32: crc,
		CompressedSize64: uint64(len(data)), UncompressedSize64: size,
	}}
}

func TestDecodeRejects(t *testing.T) {
	raw, err := Encode(sampleFile(), []SigningKey{{Private: newKey(t), KeyID: "a", KeyVersion: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, c := unzipAll(t, raw)
	bin, sig := c[binName], c[sigName]
	if _, err := Decode(makeZip(t, entry{name: binName, data: bin}, entry{name: sigName, data: sig})); err != nil {
		t.Fatalf("control case fails: %v", err)
	}
	withBin := func(b []byte) []byte {
		return makeZip(t, entry{name: binName, data: b}, entry{name: sigName, data: sig})
	}
	shortKey := withBin(append([]byte(Header), marshalPB(t, &exportpb.TemporaryExposureKeyExport{
		Keys: []*exportpb.TemporaryExposureKey{{KeyData: make([]byte, 15)}},
	})...))
	farFuture := withBin(append([]byte(Header), marshalPB(t, &exportpb.TemporaryExposureKeyExport{
		StartTimestamp: proto.Uint64(math.MaxInt64 + 1), EndTimestamp: proto.Uint64(math.MaxInt64 + 1),
	})...))

	cases := []struct {
		name string
		zip  []byte
	}{
		{"empty input", nil},
		{"not a zip", []byte("EK Export v1    not a zip at all")},
		{"zip truncated", raw[:len(raw)-10]},
		{"missing export.sig", makeZip(t, entry{name: binName, data: bin})},
		{"missing export.bin", makeZip(t, entry{name: sigName, data: sig})},
		{"empty zip", makeZip(t)},
		{"extra entry", makeZip(t, entry{name: binName, data: bin}, entry{name: sigName, data: sig}, entry{name: "readme.txt", data: []byte("hi")})},
		{"export.bin twice", makeZip(t, entry{name: binName, data: bin}, entry{name: sigName, data: sig}, entry{name: binName, data: bin})},
		{"entry in a folder", makeZip(t, entry{name: "x/" + binName, data: bin}, entry{name: sigName, data: sig})},
		{"wrong header", withBin(append([]byte("EK Export v2    "), bin[len(Header):]...))},
		{"header without padding", withBin(append([]byte("EK Export v1"), bin[len(Header):]...))},
		{"bin shorter than header", withBin(bin[:10])},
		{"truncated bin", withBin(bin[:len(bin)-1])},
		{"proto garbage after header", withBin(append([]byte(Header), 0xff, 0xff, 0xff))},
		{"key of 15 bytes", shortKey},
		{"timestamp over int64", farFuture},
		{"export.sig not a proto", makeZip(t, entry{name: binName, data: bin}, entry{name: sigName, data: []byte{0x0a, 0xff}})},
		{"declared size over limit", makeZip(t, rawStored(binName, bin, maxBinSize+1, crc32.ChecksumIEEE(bin)), entry{name: sigName, data: sig})},
		{"declared sig size over limit", makeZip(t, entry{name: binName, data: bin}, rawStored(sigName, sig, maxSigSize+1, crc32.ChecksumIEEE(sig)))},
		{"content longer than declared", makeZip(t, rawStored(binName, bin, uint64(len(bin)-1), crc32.ChecksumIEEE(bin)), entry{name: sigName, data: sig})},
		{"bad CRC", makeZip(t, rawStored(binName, bin, uint64(len(bin)), crc32.ChecksumIEEE(bin)^1), entry{name: sigName, data: sig})},
	}
	for _, c := range cases {
		d, err := Decode(c.zip)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, %v; want ErrMalformed", c.name, d, err)
		}
		t.Logf("%s: %v", c.name, err)
	}
}

// A zip bomb written by a plain zip writer: export.bin inflates to one byte
// over the limit from a few hundred KB. Decode must refuse it (its header
// says so) without inflating it.
func TestDecodeRejectsOversizeEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 64 MiB entry")
	}
	big := make([]byte, maxBinSize+1)
	copy(big, Header)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed) // fast under -race
	})
	for _, e := range []entry{{name: binName, data: big}, {name: sigName}} {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	z := buf.Bytes()
	if len(z) > 1<<20 {
		t.Fatalf("bomb is %d bytes compressed", len(z))
	}
	if _, err := Decode(z); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode = %v, want ErrMalformed", err)
	}
}

// An empty export.sig is a valid (empty) list: Decode accepts it, Verify
// reports that the file is unsigned.
func TestDecodeAcceptsEmptySignatureList(t *testing.T) {
	_, c := unzipAll(t, readGolden(t, "example-2-records.zip"))
	d, err := Decode(makeZip(t, entry{name: binName, data: c[binName]}, entry{name: sigName}))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(goldenPub(t, "example-2-records.pub.pem"), "some_id", "1"); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("Verify = %v, want ErrNoSignature", err)
	}
}
