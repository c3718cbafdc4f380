package feed

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed/feedpb"
	"github.com/covid-backend/covid-backend/fsm"
)

// fakeSource holds batches in memory, and replicated signatures by
// batch, digest and key.
type fakeSource struct {
	infos   []fsm.BatchInfo
	keys    map[uint32][]fsm.Key
	revised map[uint32][]fsm.Key
	sigs    map[string][]byte
}

func sigKey(seq, appConfig uint32, digest []byte, id, version string) string {
	return fmt.Sprintf("%d/%d/%x/%s/%s", seq, appConfig, digest, id, version)
}

func (f *fakeSource) Batches() []fsm.BatchInfo { return f.infos }
func (f *fakeSource) BatchKeys(seq uint32) ([]fsm.Key, []fsm.Key, bool) {
	k, ok := f.keys[seq]
	return k, f.revised[seq], ok
}
func (f *fakeSource) FileSignature(seq, appConfig uint32, digest []byte, id, version string) []byte {
	return f.sigs[sigKey(seq, appConfig, digest, id, version)]
}
func (f *fakeSource) LastBatch() uint32 {
	if len(f.infos) == 0 {
		return 0
	}
	return f.infos[len(f.infos)-1].Seq
}

func key(n byte) fsm.Key {
	return fsm.Key{Data: fsm.TEK{n, n, n}, RollingStart: 2_990_000, RollingPeriod: 144, TransmissionRisk: 2, ReportType: 1}
}

// add appends batch seq ending at end with the given keys and revisions.
func (f *fakeSource) add(seq uint32, start, end int64, keys []fsm.Key, revised ...fsm.Key) {
	f.infos = append(f.infos, fsm.BatchInfo{Seq: seq, StartUnix: start, EndUnix: end, Keys: len(keys), Revised: len(revised)})
	f.keys[seq], f.revised[seq] = keys, revised
}

func newFake() *fakeSource {
	return &fakeSource{keys: map[uint32][]fsm.Key{}, revised: map[uint32][]fsm.Key{}, sigs: map[string][]byte{}}
}

func signingKey(t *testing.T) export.SigningKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return export.SigningKey{Private: k, KeyID: "id", KeyVersion: "v1"}
}

const day0 = 20_000 * daySeconds // a UTC midnight

func TestParseName(t *testing.T) {
	cases := []struct {
		rel  string
		ok   bool
		want fileSpec
	}{
		{"100-200-00001.zip", true, fileSpec{start: 100, end: 200, part: 1}},
		{"day/1728000000-1728003600-00002.zip", true, fileSpec{rollup: true, start: 1728000000, end: 1728003600, part: 2}},
		{"100-200-1.zip", false, fileSpec{}},     // not canonical
		{"100-200-00000.zip", false, fileSpec{}}, // part 0
		{"200-100-00001.zip", false, fileSpec{}}, // end before start
		{"day/1728000001-1728003600-00001.zip", true, fileSpec{rollup: true, start: 1728000001, end: 1728003600, part: 1}},
		{"day/1727999999-1728003600-00001.zip", false, fileSpec{}}, // starts the day before
		{"day/1728000000-1728100000-00001.zip", false, fileSpec{}}, // longer than a day
		{"day/1728003600-1728003600-00001.zip", false, fileSpec{}}, // empty
		{"other/100-200-00001.zip", false, fileSpec{}},
		{"../100-200-00001.zip", false, fileSpec{}},
		{"index.txt", false, fileSpec{}},
	}
	for _, tc := range cases {
		got, err := parseName(tc.rel)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseName(%q) = %+v, %v", tc.rel, got, err)
		}
	}
}

// The index groups batches into one roll-up per UTC day, the day of a
// batch's end, within the retention window, oldest first.
func TestIndexRollsUpDays(t *testing.T) {
	src := newFake()
	src.add(1, day0-3*daySeconds, day0-2*daySeconds+100, []fsm.Key{key(1)}) // too old at now
	src.add(2, day0+10, day0+600, []fsm.Key{key(2)})
	src.add(3, day0+600, day0+daySeconds, []fsm.Key{key(3)}) // ends at midnight: day0
	src.add(4, day0+daySeconds, day0+daySeconds+60, []fsm.Key{key(4)})
	c := NewCatalog(Config{Root: "v1/exports", Retention: 1 * 24 * time.Hour}, src)
	now := time.Unix(day0+daySeconds+3600, 0)
	got := c.Index(now)
	want := []string{
		"v1/exports/day/" + itoa(day0+599) + "-" + itoa(day0+daySeconds) + "-00001.zip",
		"v1/exports/day/" + itoa(day0+daySeconds+59) + "-" + itoa(day0+daySeconds+60) + "-00001.zip",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("index\n%v\nwant\n%v", got, want)
	}
	if b := c.BatchIndex(now); len(b) != 3 || !strings.HasSuffix(b[0], itoa(day0+10)+"-"+itoa(day0+600)+"-00001.zip") {
		t.Fatalf("batch index %v", b)
	}
}

// A roll-up holds the keys and revisions of its day's batches; files are
// byte-identical when built twice (two nodes) and split when over the limit.
func TestFilesContentAndSplit(t *testing.T) {
	src := newFake()
	src.add(1, day0+10, day0+600, []fsm.Key{key(3), key(1), key(2)})
	src.add(2, day0+600, day0+1200, []fsm.Key{key(4), key(5)}, fsm.Key{Data: key(1).Data, RollingStart: 2_990_000, RollingPeriod: 144, ReportType: fsm.ReportTypeRevoked})
	sk := signingKey(t)
	cfg := Config{Region: "r", SigningKeys: []export.SigningKey{sk}, MaxKeysPerFile: 4}
	a, b := NewCatalog(cfg, src), NewCatalog(cfg, src)
	names := a.Index(time.Unix(day0+2000, 0))
	if len(names) != 2 {
		t.Fatalf("6 entries at 4 per file should give 2 parts: %v", names)
	}
	var total, revised int
	for _, n := range names {
		fa, err := a.File(time.Unix(day0+2000, 0), n)
		if err != nil {
			t.Fatal(err)
		}
		fb, _ := b.File(time.Unix(day0+2000, 0), n)
		if !bytes.Equal(fa.Data, fb.Data) || fa.ETag != fb.ETag {
			t.Fatalf("%s differs between two catalogs", n)
		}
		d, err := export.Decode(fa.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Verify(&sk.Private.PublicKey, "id", "v1"); err != nil {
			t.Fatal(err)
		}
		total += len(d.File.Keys)
		revised += len(d.File.RevisedKeys)
	}
	if total != 5 || revised != 1 {
		t.Fatalf("files hold %d keys and %d revisions, want 5 and 1", total, revised)
	}
	if _, err := a.File(time.Unix(day0+2000, 0), "day/"+itoa(day0)+"-"+itoa(day0+900)+"-00001.zip"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("roll-up ending between batches: %v", err)
	}
	if _, err := a.File(time.Unix(day0+2000, 0), "day/"+itoa(day0)+"-"+itoa(day0+1200)+"-00003.zip"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("part beyond the last: %v", err)
	}
	none := NewCatalog(Config{}, src)
	if _, err := none.File(time.Unix(day0+2000, 0), names[0]); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("without a key: %v", err)
	}
}

// blockingSource holds every BatchKeys call until release is closed, so
// that a test can keep delta builds running.
type blockingSource struct {
	*fakeSource
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSource) BatchKeys(seq uint32) ([]fsm.Key, []fsm.Key, bool) {
	b.entered <- struct{}{}
	<-b.release
	return b.fakeSource.BatchKeys(seq)
}

// Every (since, until) pair is a delta of its own: a node builds at most
// DeltaBuilds at once, and a request that finds no slot within DeltaWait is
// answered ErrBusy, while deltas built before still answer from the cache.
// Strangers asking for thousands of pairs hold that much CPU and memory,
// no more.
func TestDeltaBuildsBounded(t *testing.T) {
	src := &blockingSource{fakeSource: newFake(), entered: make(chan struct{}, 8), release: make(chan struct{})}
	for seq := range uint32(4) {
		src.add(seq+1, day0+int64(seq)*600, day0+int64(seq+1)*600, []fsm.Key{key(byte(seq + 1))})
	}
	c := NewCatalog(Config{Region: "r", DeltaBuilds: 2, DeltaWait: 50 * time.Millisecond}, src)
	close(src.release)
	if _, _, err := c.Delta(Cursor{Since: 3, HasSince: true}, false); err != nil {
		t.Fatal(err)
	}
	<-src.entered
	src.release = make(chan struct{})
	errs := make(chan error, 2)
	for since := range uint32(2) {
		go func() { _, _, err := c.Delta(Cursor{Since: since + 1, HasSince: true, Until: 3}, false); errs <- err }()
		<-src.entered // the build holds its slot
	}
	if _, _, err := c.Delta(Cursor{Since: 1, HasSince: true, Until: 2}, false); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third pair while two build: %v, want ErrBusy", err)
	}
	if _, _, err := c.Delta(Cursor{Since: 3, HasSince: true}, false); err != nil {
		t.Fatalf("a delta built before, while two build: %v", err)
	}
	close(src.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for len(src.entered) > 0 {
		<-src.entered
	}
	if _, _, err := c.Delta(Cursor{Since: 1, HasSince: true, Until: 2}, false); err != nil {
		t.Fatalf("the third pair once the slots are free: %v", err)
	}
}

// The delta feed: full answers drop revoked keys; incremental ones list
// them as removals; cursors beyond the newest batch are refused.
func TestDelta(t *testing.T) {
	src := newFake()
	src.add(1, day0, day0+600, []fsm.Key{key(1), key(2)})
	src.add(2, day0+600, day0+1200, []fsm.Key{key(3)}, fsm.Key{Data: key(1).Data, ReportType: fsm.ReportTypeRevoked, RollingPeriod: 144})
	c := NewCatalog(Config{Region: "r"}, src)
	decode := func(f *File) *feedpb.KeyFeed {
		var m feedpb.KeyFeed
		if err := proto.Unmarshal(f.Data, &m); err != nil {
			t.Fatal(err)
		}
		return &m
	}
	f, cur, err := c.Delta(Cursor{}, false)
	if err != nil {
		t.Fatal(err)
	}
	full := decode(f)
	if !full.GetFull() || cur.Until != 2 || len(full.GetAdded()) != 2 || len(full.GetRemoved()) != 0 {
		t.Fatalf("full: %v", full)
	}
	f, _, _ = c.Delta(Cursor{Since: 1, HasSince: true}, false)
	inc := decode(f)
	revoked := key(1).Data
	if inc.GetFull() || len(inc.GetAdded()) != 1 || len(inc.GetRemoved()) != 1 || !bytes.Equal(inc.GetRemoved()[0].GetKeyData(), revoked[:]) {
		t.Fatalf("since 1: %v", inc)
	}
	// A revision (not a revocation) publishes the key again with its new
	// report type: an update in both full and incremental answers.
	upgraded := key(2)
	upgraded.ReportType = 2
	src.add(3, day0+1200, day0+1800, nil, upgraded)
	c = NewCatalog(Config{Region: "r"}, src)
	f, _, _ = c.Delta(Cursor{}, false)
	full = decode(f)
	var got int32 = -1
	for _, k := range full.GetAdded() {
		if bytes.Equal(k.GetKeyData(), upgraded.Data[:]) {
			got = k.GetReportType()
		}
	}
	if len(full.GetAdded()) != 2 || got != 2 {
		t.Fatalf("full after revision: %d keys, revised key type %d", len(full.GetAdded()), got)
	}
	f, _, _ = c.Delta(Cursor{Since: 2, HasSince: true}, false)
	if inc := decode(f); len(inc.GetAdded()) != 1 || inc.GetAdded()[0].GetReportType() != 2 || len(inc.GetRemoved()) != 0 {
		t.Fatalf("since 2: %v", inc)
	}
	for _, bad := range []Cursor{{Since: 4, HasSince: true}, {Until: 9}, {Since: 2, Until: 1, HasSince: true}} {
		if _, _, err := c.Delta(bad, false); !errors.Is(err, ErrFutureCursor) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Only the roll-ups the index lists for a day are built, and those it
// listed before a seal less than SupersededGrace ago (the one before the
// last always): no other window of a day, so that the files a client can
// make a node build are bounded, and an app that read the index before a
// few seals still finds what it listed.
func TestRollupNamesOnlyListed(t *testing.T) {
	src := newFake()
	for i := range 4 { // batches end at 600, 1200, 1800 and 2400 s into the day
		src.add(uint32(i+1), day0+int64(i)*600, day0+int64(i+1)*600, []fsm.Key{key(byte(i + 1))})
	}
	cfg := Config{Root: "v1/exports", Retention: 24 * time.Hour, SigningKeys: []export.SigningKey{signingKey(t)}}
	name := func(first, last int) string {
		return "day/" + itoa(day0+int64(first)*600-1) + "-" + itoa(day0+int64(last)*600) + "-00001.zip"
	}
	if idx := NewCatalog(cfg, src).Index(time.Unix(day0+3000, 0)); len(idx) != 1 || idx[0] != "v1/exports/"+name(1, 4) {
		t.Fatalf("index %v, want %s", idx, name(1, 4))
	}
	grace := int64(SupersededGrace / time.Second)
	for _, tc := range []struct {
		first, last int
		at          int64 // seconds into the day
		served      bool
	}{
		{1, 4, 3000, true},
		{1, 3, 3000, true},
		{1, 3, 2400 + 2*grace, true}, // the one before the last, however late
		{1, 2, 3000, true},           // replaced at 1800, within the grace
		{1, 2, 1800 + grace, true},
		{1, 2, 1800 + grace + 1, false},
		{1, 1, 1200 + grace + 1, false},
		{1, 1, 3000, true},
		{2, 4, 3000, false}, // not from the day's first batch
		{3, 4, 3000, false},
	} {
		_, err := NewCatalog(cfg, src).File(time.Unix(day0+tc.at, 0), name(tc.first, tc.last))
		if served := err == nil; served != tc.served {
			t.Errorf("roll-up of batches %d to %d at %d s: err %v, want served=%v", tc.first, tc.last, tc.at, err, tc.served)
		}
	}
}
