package feed_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

const (
	// benchNow is the leader's clock at the first seal (a Unix time).
	benchNow = 1_700_000_000
	// benchKeysPerSub keys per upload, as a GAEN app sends them.
	benchKeysPerSub = 14
)

// splitmix is the SplitMix64 finalizer: distinct inputs, distinct outputs.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// expiredKey returns key n: one of the 14 days before benchNow's UTC day,
// so its validity has ended at any seal at or after benchNow.
func expiredKey(n uint64) *fsmpb.Key {
	data := make([]byte, fsm.KeyLen)
	binary.BigEndian.PutUint64(data, splitmix(2*n))
	binary.BigEndian.PutUint64(data[8:], splitmix(2*n+1))
	today := int32(benchNow/600) / 144 * 144
	k := &fsmpb.Key{
		KeyData:          data,
		RollingStart:     today - 144*int32(1+n%14),
		RollingPeriod:    144,
		TransmissionRisk: int32(n % (fsm.MaxTransmissionRisk + 1)),
		ReportType:       1,
	}
	if n%2 == 0 {
		k.HasDaysSinceOnset, k.DaysSinceOnset = true, int32(n%14)
	}
	return k
}

func logOf(tb testing.TB, cmd *fsmpb.Command) *raft.Log {
	tb.Helper()
	cmd.Version = 1
	data, err := proto.Marshal(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	return &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}
}

// publishLogs returns encoded publish commands that store nKeys keys
// numbered from first, 14 per submission, arriving at timeUnix.
func publishLogs(tb testing.TB, first uint64, nKeys int, timeUnix int64) []*raft.Log {
	tb.Helper()
	out := make([]*raft.Log, 0, (nKeys+benchKeysPerSub-1)/benchKeysPerSub)
	for k := 0; k < nKeys; k += benchKeysPerSub {
		n := first + uint64(k)
		id := make([]byte, 16)
		binary.BigEndian.PutUint64(id, 0xbe1c4)
		binary.BigEndian.PutUint64(id[8:], n)
		digest := make([]byte, 32)
		binary.BigEndian.PutUint64(digest, splitmix(n^0xd16e57))
		p := &fsmpb.Publish{SubmissionId: id, AppId: "org.example.covid", Issuer: "https://ha.example.org", CertificateDigest: digest}
		for i := range min(benchKeysPerSub, nKeys-k) {
			p.Keys = append(p.Keys, expiredKey(n+uint64(i)))
		}
		out = append(out, logOf(tb, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, TimeUnix: timeUnix, Publish: p}))
	}
	return out
}

func applyOK(tb testing.TB, f *fsm.FSM, l *raft.Log) *fsmpb.Result {
	tb.Helper()
	r := f.Apply(l).(*fsmpb.Result)
	if r.GetRefusal() != nil {
		tb.Fatal(r.GetRefusal())
	}
	return r
}

// sealLog seals batch seq at t; target is the padding goal (the leader's
// --seal-min-keys), and no padding keys are given since every batch here
// is far larger.
func sealLog(tb testing.TB, seq uint32, t int64) *raft.Log {
	return logOf(tb, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL, TimeUnix: t,
		Seal: &fsmpb.Seal{Seq: seq, TargetKeys: 1000}})
}

func benchConfig(tb testing.TB) feed.Config {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return feed.Config{Region: "bench", Root: "v1/exports",
		SigningKeys: []export.SigningKey{{Private: k, KeyID: "bench", KeyVersion: "v1"}}}
}

// BenchmarkSealAndSign100k times what a leader does when a seal tick finds
// 100,000 expired keys and the first app asks for the new batch: apply the
// SEAL command, then build and sign the batch's export file. Filling the
// state is outside the timer. Target: under 1 s.
func BenchmarkSealAndSign100k(b *testing.B) {
	const nKeys = 100_000
	logs := publishLogs(b, 0, nKeys, benchNow-3600)
	seal := sealLog(b, 1, benchNow)
	cfg := benchConfig(b)
	var sealTime, fileTime time.Duration
	var last *feed.File
	for range b.N {
		b.StopTimer()
		f := fsm.New()
		for _, l := range logs {
			applyOK(b, f, l)
		}
		if f.NumKeys() != nKeys {
			b.Fatalf("%d keys stored, want %d", f.NumKeys(), nKeys)
		}
		c := feed.NewCatalog(cfg, f)
		runtime.GC()
		b.StartTimer()

		t0 := time.Now()
		res := applyOK(b, f, seal).GetSeal()
		t1 := time.Now()
		names := c.BatchIndex(time.Unix(benchNow, 0))
		if len(names) != 1 {
			b.Fatalf("batch index %v", names)
		}
		file, err := c.File(time.Unix(benchNow, 0), names[0][len("v1/exports/"):])
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()

		b.StopTimer()
		if res.Keys != nKeys || res.Padding != 0 {
			b.Fatalf("seal: %+v", res)
		}
		sealTime += t1.Sub(t0)
		fileTime += t2.Sub(t1)
		last = file
		b.StartTimer()
	}
	b.StopTimer()
	d, err := export.Decode(last.Data)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Verify(&cfg.SigningKeys[0].Private.PublicKey, "bench", "v1"); err != nil || len(d.File.Keys) != nKeys {
		b.Fatalf("export file: %d keys, verify: %v", len(d.File.Keys), err)
	}
	n := float64(b.N)
	b.ReportMetric((sealTime+fileTime).Seconds()*1000/n, "ms")
	b.ReportMetric(sealTime.Seconds()*1000/n, "seal-ms")
	b.ReportMetric(fileTime.Seconds()*1000/n, "file-ms")
	b.ReportMetric(float64(len(last.Data)), "file-bytes")
}

// million is a state of 1,000,000 sealed keys in 10 batches of 100,000,
// built once.
var million struct {
	once sync.Once
	f    *fsm.FSM
}

func millionSealed(b *testing.B) *fsm.FSM {
	b.Helper()
	const batches, perBatch = 10, 100_000
	million.once.Do(func() {
		f := fsm.New()
		for i := range batches {
			t := int64(benchNow + i*600)
			for _, l := range publishLogs(b, uint64(i*perBatch), perBatch, t-300) {
				applyOK(b, f, l)
			}
			if r := applyOK(b, f, sealLog(b, uint32(i+1), t)).GetSeal(); int(r.GetKeys()) != perBatch {
				b.Fatalf("seal %d: %+v", i+1, r)
			}
		}
		million.f = f
	})
	if million.f == nil || million.f.NumKeys() != batches*perBatch || len(million.f.Batches()) != batches {
		b.Fatal("the 1M-key state was not built")
	}
	return million.f
}

// BenchmarkFullDelta1M times the full delta feed (no cursor) over 1,000,000
// sealed keys in 10 batches, as a first-time app or a cold cache asks for it:
// a new Catalog per iteration, so every iteration builds and encodes.
func BenchmarkFullDelta1M(b *testing.B) {
	f := millionSealed(b)
	cfg := benchConfig(b)
	for _, tc := range []struct {
		name   string
		asJSON bool
	}{{"protobuf", false}, {"json", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var size int
			var total time.Duration
			b.ReportAllocs()
			runtime.GC()
			b.ResetTimer()
			for range b.N {
				c := feed.NewCatalog(cfg, f)
				t0 := time.Now()
				file, cur, err := c.Delta(feed.Cursor{}, tc.asJSON)
				total += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if cur.Until != 10 {
					b.Fatalf("answered until %d, want 10", cur.Until)
				}
				size = len(file.Data)
			}
			b.StopTimer()
			b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms")
			b.ReportMetric(float64(size), "bytes")
		})
	}
}
