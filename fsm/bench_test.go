package fsm_test

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/covid-backend/covid-backend/fsm"
)

const (
	benchKeys       = 1_000_000
	benchKeysPerSub = 14
)

// publishEntries returns encoded publish entries that store nKeys keys,
// perSub per submission, numbered from firstKey (so disjoint ranges give
// disjoint keys and submission ids).
func publishEntries(tb testing.TB, nKeys, perSub int, firstKey uint64) []*raft.Log {
	tb.Helper()
	out := make([]*raft.Log, 0, (nKeys+perSub-1)/perSub)
	for k := 0; k < nKeys; k += perSub {
		n := firstKey + uint64(k)
		cmd := publish(n, now+int64(k), keysFrom(n, min(perSub, nKeys-k))...)
		out = append(out, logEntry(uint64(len(out)+1), mustEncode(tb, cmd)))
	}
	return out
}

func mustApplyAll(tb testing.TB, f *fsm.FSM, logs []*raft.Log) {
	tb.Helper()
	for _, l := range logs {
		if r := toResponse(tb, f.Apply(l)); r.Err != nil {
			tb.Fatal(r.Err)
		}
	}
}

// big is a state of 1M keys in 1M/14 submissions, built once through Apply.
var big struct {
	once sync.Once
	f    *fsm.FSM
	snap []byte
}

func bigState(b *testing.B) (*fsm.FSM, []byte) {
	b.Helper()
	big.once.Do(func() {
		f := fsm.New()
		mustApplyAll(b, f, publishEntries(b, benchKeys, benchKeysPerSub, 0))
		mustApply(b, f, putNode("n1", "10.0.0.1:7000", "10.0.0.1:8080"))
		mustApply(b, f, putAuthority("https://ha.example.org", "aud", []string{"org.example.covid"}, akey("k1", 0, 0)))
		big.f, big.snap = f, snapshotBytes(b, f)
	})
	if big.f.NumKeys() != benchKeys {
		b.Fatalf("big state holds %d keys", big.f.NumKeys())
	}
	return big.f, big.snap
}

func BenchmarkApplyPublish(b *testing.B) {
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N*benchKeysPerSub)/b.Elapsed().Seconds(), "keys/s")
	}
	b.Run("Apply", func(b *testing.B) {
		logs := publishEntries(b, b.N*benchKeysPerSub, benchKeysPerSub, 0)
		f := fsm.New()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if r := toResponse(b, f.Apply(logs[i])); r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		b.StopTimer()
		report(b)
	})
	// One op is one entry of 14 keys, applied in batches of 64 as raft
	// hands them to a BatchingFSM.
	batch := func(b *testing.B, f *fsm.FSM, first uint64) {
		logs := publishEntries(b, b.N*benchKeysPerSub, benchKeysPerSub, first)
		b.ReportAllocs()
		b.ResetTimer()
		for chunk := range slices.Chunk(logs, 64) {
			for _, out := range f.ApplyBatch(chunk) {
				if r := toResponse(b, out); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		b.StopTimer()
		report(b)
	}
	b.Run("ApplyBatch64", func(b *testing.B) { batch(b, fsm.New(), 0) })
	b.Run("ApplyBatch64_onto1M", func(b *testing.B) {
		_, snap := bigState(b)
		f := fsm.New()
		if err := restoreBytes(f, snap); err != nil {
			b.Fatal(err)
		}
		batch(b, f, 1<<40)
	})
}

func BenchmarkSnapshot1M(b *testing.B) {
	f, want := bigState(b)
	var sink memSink
	sink.Grow(len(want))
	var capture time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sink.Reset()
		t0 := time.Now()
		snap, err := f.Snapshot()
		capture += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if err := snap.Persist(&sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
	}
	b.StopTimer()
	if !bytes.Equal(sink.Bytes(), want) {
		b.Fatal("snapshot bytes differ between runs")
	}
	b.ReportMetric(float64(sink.Len()), "snapshot-bytes")
	// The part of a snapshot that holds the read lock, blocking Apply.
	b.ReportMetric(capture.Seconds()*1000/float64(b.N), "capture-ms/op")
}

func BenchmarkRestore1M(b *testing.B) {
	_, snap := bigState(b)
	var f *fsm.FSM
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f = fsm.New()
		if err := restoreBytes(f, snap); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if f.NumKeys() != benchKeys {
		b.Fatalf("restored %d keys, want %d", f.NumKeys(), benchKeys)
	}
	b.ReportMetric(float64(len(snap)), "snapshot-bytes")
}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkMemoryPerKey measures the live heap a state of n keys (and their
// n/14 submissions) costs, built through Apply ("B/key"), once sealed into
// a batch ("B/key-sealed", the steady state: keys wait for a seal minutes at
// most) and through Restore of its snapshot ("B/key-restored", where the
// table is presized). Three sizes, since the key table's share depends on
// where n falls between two of its growths (a map[TEK]keyRecord, which
// doubles, cost 127 B/key sealed at 1M keys, just past a doubling).
func BenchmarkMemoryPerKey(b *testing.B) {
	for _, n := range []int{750_000, benchKeys, 1_800_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			var applied, sealed, restored float64
			for range b.N {
				applied, sealed, restored = memoryPerKey(b, n)
			}
			b.ReportMetric(applied, "B/key")
			b.ReportMetric(sealed, "B/key-sealed")
			b.ReportMetric(restored, "B/key-restored")
		})
	}
}

func memoryPerKey(b *testing.B, n int) (applied, sealed, restored float64) {
	b.StopTimer()
	logs := publishEntries(b, n, benchKeysPerSub, 0)
	before := heapAlloc()
	b.StartTimer()
	f := fsm.New()
	mustApplyAll(b, f, logs)
	b.StopTimer()
	applied = float64(heapAlloc()-before) / float64(n)
	// Sealed keys are also copied into their batch (as published). The
	// entries stay alive until measured: freed, they would be counted off
	// the state's heap.
	seal := sealCmd(1, 2_000_000_000, 0, 0)
	seal.Seal.Origin = "bench"
	mustApply(b, f, seal)
	sealed = float64(heapAlloc()-before) / float64(n)
	runtime.KeepAlive(logs)

	snap := snapshotBytes(b, f)
	logs, f = nil, nil
	before = heapAlloc()
	g := fsm.New()
	if err := restoreBytes(g, snap); err != nil {
		b.Fatal(err)
	}
	restored = float64(heapAlloc()-before) / float64(n)
	if g.NumKeys() != n {
		b.Fatalf("%d keys", g.NumKeys())
	}
	runtime.KeepAlive(snap)
	return applied, sealed, restored
}
