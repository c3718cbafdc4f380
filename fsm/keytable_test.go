package fsm

import (
	"maps"
	"math"
	"math/rand/v2"
	"testing"
)

// TestKeyTableAgainstMap runs random inserts, updates, deletes and bulk
// deletes on a keyTable and on a map, and checks after each step that the
// two hold the same keys and records. Small key spaces make the same keys
// come back after their removal.
func TestKeyTableAgainstMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  int // distinct keys drawn from
		steps int
	}{
		{"tiny", 12, 2000},
		{"small", 200, 20000},
		{"growing", 50000, 120000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.keys)))
			table, model := newKeyTable(0), map[TEK]keyRecord{}
			key := func() TEK {
				var k TEK
				n := rng.IntN(tc.keys)
				k[0], k[1], k[2] = byte(n), byte(n>>8), byte(n>>16)
				return k
			}
			for step := range tc.steps {
				k := key()
				switch op := rng.IntN(10); {
				case op < 6:
					r := keyRecord{start: int32(step), submission: rng.Uint32(), batch: uint32(op)}
					table.set(k, r)
					model[k] = r
				case op < 9:
					_, want := model[k]
					if got := table.delete(k); got != want {
						t.Fatalf("step %d: delete %x = %v, want %v", step, k[:3], got, want)
					}
					delete(model, k)
				default:
					batch := uint32(rng.IntN(6))
					n := table.deleteFunc(func(_ TEK, r keyRecord) bool { return r.batch == batch })
					before := len(model)
					maps.DeleteFunc(model, func(_ TEK, r keyRecord) bool { return r.batch == batch })
					if n != before-len(model) {
						t.Fatalf("step %d: deleteFunc removed %d, want %d", step, n, before-len(model))
					}
				}
				if table.len() != len(model) {
					t.Fatalf("step %d: %d keys, want %d", step, table.len(), len(model))
				}
				want, stored := model[k]
				if got, ok := table.find(k); ok != stored || got != want {
					t.Fatalf("step %d: find %x = %v %v, want %v %v", step, k[:3], got, ok, want, stored)
				}
				if step%997 == 0 || step == tc.steps-1 {
					assertSameKeys(t, table, model)
				}
			}
		})
	}
}

func assertSameKeys(t *testing.T, table *keyTable, model map[TEK]keyRecord) {
	t.Helper()
	seen := map[TEK]keyRecord{}
	for k, r := range table.all() {
		if _, dup := seen[k]; dup {
			t.Fatalf("all yields %x twice", k[:3])
		}
		seen[k] = r
	}
	if !maps.Equal(seen, model) {
		t.Fatalf("table holds %d keys, model %d, or their records differ", len(seen), len(model))
	}
	for k, r := range model {
		if got, ok := table.find(k); !ok || got != r {
			t.Fatalf("find %x = %v %v, want %v", k[:3], got, ok, r)
		}
	}
	if load := float64(table.len()) / float64(len(table.slots)); load > 0.75 {
		t.Fatalf("table %.2f full", load)
	}
}

// TestKeyTableRunsWrapAround places records whose hashes all start their
// search in the last slots, so that runs wrap to the table's start, and
// removes them in every position: what is left must still be found.
func TestKeyTableRunsWrapAround(t *testing.T) {
	hashes := []uint32{math.MaxUint32, math.MaxUint32 - 1, math.MaxUint32, 0, math.MaxUint32 - 1<<27, 1 << 28, math.MaxUint32, 0}
	for remove := range hashes {
		t.Run("", func(t *testing.T) {
			table := newKeyTable(0)
			table.pages = [][]keyEntry{make([]keyEntry, 0, pageSize)}
			for i, h := range hashes {
				table.pages[0] = append(table.pages[0], keyEntry{data: TEK{byte(i + 1)}})
				table.place(h, uint32(i))
			}
			i, ok := table.slot(TEK{byte(remove + 1)}, hashes[remove])
			if !ok {
				t.Fatalf("record %d not found before removal", remove)
			}
			table.unplace(i)
			for j, h := range hashes {
				_, found := table.slot(TEK{byte(j + 1)}, h)
				if found != (j != remove) {
					t.Fatalf("after removing %d, record %d found: %v", remove, j, found)
				}
			}
		})
	}
}

// TestKeyTableShrinksAfterExpiry: once most keys of a peak expire, the
// table's slots shrink to fit what is left, and what is left is found.
func TestKeyTableShrinksAfterExpiry(t *testing.T) {
	table, model := newKeyTable(0), map[TEK]keyRecord{}
	for i := range 100_000 {
		k := TEK{byte(i), byte(i >> 8), byte(i >> 16)}
		r := keyRecord{batch: uint32(i % 100)}
		table.set(k, r)
		model[k] = r
	}
	peak := len(table.slots)
	table.deleteFunc(func(_ TEK, r keyRecord) bool { return r.batch != 0 })
	maps.DeleteFunc(model, func(_ TEK, r keyRecord) bool { return r.batch != 0 })
	if len(table.slots) > 2*len(model) || len(table.slots) >= peak {
		t.Fatalf("%d slots for %d keys (%d at the peak)", len(table.slots), len(model), peak)
	}
	if len(table.pages) != (len(model)+pageSize-1)/pageSize {
		t.Fatalf("%d pages for %d keys", len(table.pages), len(model))
	}
	assertSameKeys(t, table, model)
}
