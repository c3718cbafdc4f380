package fsm

import (
	"hash/maphash"
	"iter"
)

// keyTable is the key set: each stored key's record, found by its bytes.
//
// It takes the place of a map[TEK]keyRecord, whose slots hold key and
// record (37 bytes with their control byte) and which doubles, so that
// just past a doubling a million keys cost 80 bytes each. Here the
// records sit densely in pages (36 bytes a key) and the hash table holds
// only 8 bytes a slot: the record's index and 32 bits of the key's hash.
// The table grows by half when three quarters full (BenchmarkMemoryPerKey)
// and shrinks when an expiry leaves it less than an eighth full.
//
// The hash is seeded at random, as Go's maps are, so that keys chosen by
// uploaders cannot be made to collide. The seed decides where a record
// sits, never what the state machine decides: like a map's, the order of
// all is no order callers may depend on.
type keyTable struct {
	seed  maphash.Seed
	slots []uint64     // 0 empty; else hash<<32 | record index+1
	pages [][]keyEntry // the records, dense: record i is in pages[i>>pageBits]
	n     int
}

// keyEntry is a key and its record, as the table stores them.
type keyEntry struct {
	data TEK
	rec  keyRecord
}

const (
	pageBits = 10
	pageSize = 1 << pageBits
	// minSlots is the smallest table.
	minSlots = 16
)

// newKeyTable returns an empty table with room for n keys.
func newKeyTable(n int) *keyTable {
	t := &keyTable{seed: maphash.MakeSeed()}
	t.slots = make([]uint64, max(minSlots, n+n/2))
	t.pages = make([][]keyEntry, 0, (n+pageSize-1)/pageSize)
	return t
}

// len returns how many keys the table holds.
func (t *keyTable) len() int { return t.n }

// find returns k's record; false if k is not stored.
func (t *keyTable) find(k TEK) (keyRecord, bool) {
	if i, ok := t.slot(k, t.hash(k)); ok {
		return t.entry(t.index(i)).rec, true
	}
	return keyRecord{}, false
}

// at returns k's record, the zero record if k is not stored (as a map
// index would).
func (t *keyTable) at(k TEK) keyRecord {
	r, _ := t.find(k)
	return r
}

// has reports whether k is stored.
func (t *keyTable) has(k TEK) bool {
	_, ok := t.slot(k, t.hash(k))
	return ok
}

// set stores r as k's record, adding k if it is not stored.
func (t *keyTable) set(k TEK, r keyRecord) {
	h := t.hash(k)
	if i, ok := t.slot(k, h); ok {
		t.entry(t.index(i)).rec = r
		return
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(len(t.slots) + len(t.slots)/2)
	}
	idx := t.n
	if idx>>pageBits == len(t.pages) {
		// The first page grows as it fills: a small state (a test's, a
		// new region's) needs no full page.
		t.pages = append(t.pages, make([]keyEntry, 0, min(pageSize, max(minSlots, idx))))
	}
	p := &t.pages[idx>>pageBits]
	*p = append(*p, keyEntry{k, r})
	t.n++
	t.place(h, uint32(idx))
}

// delete removes k; false if it was not stored. The last record moves
// into the removed one's place, so that the records stay dense.
func (t *keyTable) delete(k TEK) bool {
	i, ok := t.slot(k, t.hash(k))
	if !ok {
		return false
	}
	idx := t.index(i)
	t.unplace(i)
	last := t.n - 1
	if idx != last {
		moved := *t.entry(last)
		j, _ := t.slot(moved.data, t.hash(moved.data))
		t.slots[j] = t.slots[j]&^0xffffffff | uint64(idx+1)
		*t.entry(idx) = moved
	}
	p := &t.pages[last>>pageBits]
	if *p = (*p)[:len(*p)-1]; len(*p) == 0 {
		*p = nil
		t.pages = t.pages[:len(t.pages)-1]
	}
	t.n--
	return true
}

// all yields every key and its record, in no order callers may depend
// on. The table must not change while all runs.
func (t *keyTable) all() iter.Seq2[TEK, keyRecord] {
	return func(yield func(TEK, keyRecord) bool) {
		for _, p := range t.pages {
			for i := range p {
				if !yield(p[i].data, p[i].rec) {
					return
				}
			}
		}
	}
}

// deleteFunc removes every key for which del returns true and returns
// how many it removed. A table left less than an eighth full shrinks, so
// that the memory of a peak goes once its keys expire (a map's stays).
func (t *keyTable) deleteFunc(del func(TEK, keyRecord) bool) int {
	removed := 0
	// From the last record down: a removal moves the last record, one
	// already seen, into the removed one's place.
	for idx := t.n - 1; idx >= 0; idx-- {
		if e := t.entry(idx); del(e.data, e.rec) {
			t.delete(e.data)
			removed++
		}
	}
	if t.n*8 < len(t.slots) && len(t.slots) > minSlots {
		t.resize(max(minSlots, t.n+t.n/2))
	}
	return removed
}

func (t *keyTable) hash(k TEK) uint32 {
	return uint32(maphash.Comparable(t.seed, k) >> 32)
}

// home is the slot where a key of hash h is looked for first: h scaled to
// the table's length, so that the table need not be a power of two long.
func (t *keyTable) home(h uint32) int {
	return int(uint64(h) * uint64(len(t.slots)) >> 32)
}

func (t *keyTable) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

func (t *keyTable) index(slot int) int { return int(uint32(t.slots[slot])) - 1 }

func (t *keyTable) entry(idx int) *keyEntry {
	return &t.pages[idx>>pageBits][idx&(pageSize-1)]
}

// slot finds the slot holding k, whose hash is h.
func (t *keyTable) slot(k TEK, h uint32) (int, bool) {
	for i := t.home(h); ; i = t.next(i) {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == h && t.entry(t.index(i)).data == k {
			return i, true
		}
	}
}

// place puts record idx, of hash h, in the first free slot from its home.
func (t *keyTable) place(h uint32, idx uint32) {
	i := t.home(h)
	for t.slots[i] != 0 {
		i = t.next(i)
	}
	t.slots[i] = uint64(h)<<32 | uint64(idx+1)
}

// unplace empties slot i and moves later slots of its run back into the
// hole where their home allows (deletion in linear probing, without
// tombstones).
func (t *keyTable) unplace(i int) {
	for j := t.next(i); t.slots[j] != 0; j = t.next(j) {
		h := t.home(uint32(t.slots[j] >> 32))
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if i <= j && i < h && h <= j || i > j && (i < h || h <= j) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = 0
}

// resize makes the table size slots long, placing each record from the
// hash its slot kept.
func (t *keyTable) resize(size int) {
	old := t.slots
	t.slots = make([]uint64, size)
	for _, s := range old {
		if s != 0 {
			t.place(uint32(s>>32), uint32(s)-1)
		}
	}
}
