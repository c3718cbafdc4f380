package export

import (
	"math/rand/v2"
	"testing"
	"time"
)

// randomFile makes n keys with realistic fields from a fixed seed.
func randomFile(n int) File {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	f := File{
		Start: time.Unix(1_600_000_000, 0), End: time.Unix(1_600_014_400, 0),
		Region: "US", BatchNum: 1, BatchSize: 1, Keys: make([]Key, n),
	}
	for i := range f.Keys {
		k := &f.Keys[i]
		for j := range k.Data {
			k.Data[j] = byte(r.Uint32())
		}
		k.RollingStart = 2_660_000 + 144*r.Int32N(14)
		k.RollingPeriod = 144
		k.TransmissionRisk = r.Int32N(9)
		k.ReportType = 1 + r.Int32N(2)
		k.DaysSinceOnset, k.HasDaysSinceOnset = r.Int32N(29)-14, true
	}
	return f
}

// BenchmarkEncode100k is encode + sign of a 100,000-key export with one key.
func BenchmarkEncode100k(b *testing.B) {
	f := randomFile(100_000)
	keys := []SigningKey{{Private: newKey(b), KeyID: "310", KeyVersion: "v1"}}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		out, err := Encode(f, keys)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "zip-bytes")
}

// BenchmarkDecode100k is decode + verify of the same file, what a mirror or
// a test of a published export pays.
func BenchmarkDecode100k(b *testing.B) {
	priv := newKey(b)
	raw, err := Encode(randomFile(100_000), []SigningKey{{Private: priv, KeyID: "310", KeyVersion: "v1"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Verify(&priv.PublicKey, "310", "v1"); err != nil {
			b.Fatal(err)
		}
	}
}
