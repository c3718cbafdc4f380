package feed_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/internal/kstest"
	"github.com/covid-backend/covid-backend/padding"
)

// TestAppsFetchEachKeyOnce runs a small app population through 15 days of
// padding by the day (across midnights and retention): each app that
// syncs on batches.txt, by either way, fetches each real key once; a fresh
// install gets the whole window from index.txt in at most 15 files; and
// batches.txt keeps every name until its day leaves retention (checked at
// every poll, simRegion.checkKept). An app installed in the middle that
// takes index.txt first and then batches.txt after its cursor gets each
// key once too.
func TestAppsFetchEachKeyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated fortnight")
	}
	cursor := &simApp{name: "cursor", list: "index", every: time.Hour, cursor: true, counts: map[[16]byte]int{}}
	// Seals every 30 minutes and 60 uploads a day: a third of the
	// benchmark's work, so that it stays short under the race detector.
	run := simulate(t, simLoad{padding: "day", interval: 30 * time.Minute, perDay: fsm.DefaultPaddingKeysPerDay,
		uploadsPerDay: 60, fillDays: 13, measureDays: 2, joining: cursor,
		apps: func(a *simApp) bool { return a.list == "batches" }})
	t.Logf("\n%s", run.table(2))
	for _, a := range run.apps {
		if a.list != "batches" {
			continue
		}
		if d := run.dup(a); d > 1.05 || d < 0.95 {
			t.Errorf("%s fetched each key %.3f times; want 1 (at most 1.05)", a.name, d)
		}
	}
	fresh := run.fresh[0]
	if fresh.list != "index" || fresh.files > 15 {
		t.Errorf("a fresh install read %d files from %s.txt; want at most 15 from index.txt", fresh.files, fresh.list)
	}
	inWindow := run.region.realInRetention()
	if fresh.realFetched != inWindow {
		t.Errorf("a fresh install got %d real keys from index.txt; the window holds %d", fresh.realFetched, inWindow)
	}
	// An app installed on the first measured day that keeps a cursor:
	// index.txt once, then batches.txt after its cursor, each key once.
	twice := 0
	for _, n := range cursor.counts {
		if n > 1 {
			twice++
		}
	}
	if twice > 0 || len(cursor.counts) < inWindow {
		t.Errorf("the app with a cursor fetched %d keys, %d of them more than once; the window holds %d", len(cursor.counts), twice, inWindow)
	}
}

// TestPaddingHidesTheDaysCount compares the sizes of the export files of
// days of 10 uploads and days of 200: padded by the day, a two-sample
// Kolmogorov-Smirnov test cannot tell them apart within size bucket 0 (and
// the busy days stay in it); unpadded, the same test tells them apart, so
// it has the power to.
func TestPaddingHidesTheDaysCount(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated days")
	}
	uploadsOn := func(day int) int { return []int{10, 10, 10, 10, 200, 200, 0}[min(day, 6)] }
	plan := padding.Plan{PerDay: fsm.DefaultPaddingKeysPerDay, Interval: 10 * time.Minute}
	for _, tc := range []struct {
		padding      string
		distinguishs bool
	}{{"day", false}, {"none", true}} {
		run := simulate(t, simLoad{padding: tc.padding, interval: plan.Interval, perDay: plan.PerDay, uploadsOn: uploadsOn, measureDays: 6,
			apps: func(*simApp) bool { return false }})
		// whole days, the first one of each kind settling in; three quiet
		// days, so that the unpadded ones have files enough to test
		quiet, busy := slices.Concat(run.region.fileSizes(1), run.region.fileSizes(2), run.region.fileSizes(3)), run.region.fileSizes(5)
		if tc.padding == "day" {
			lo, hi := plan.Range(0)
			for _, b := range run.region.sizes {
				if b.keys < lo || b.keys > hi {
					t.Errorf("day %d: a batch of %d keys, outside bucket 0 (%d-%d)", b.day, b.keys, lo, hi)
				}
			}
		}
		d, critical := kstest.Statistic(quiet, busy), kstest.Critical(len(quiet), len(busy), 0.01)
		t.Logf("padding %s: %d files on three days of 10 uploads, %d on a day of 200; KS D = %.3f (critical at 1 %%: %.3f)", tc.padding, len(quiet), len(busy), d, critical)
		if got := d > critical; got != tc.distinguishs {
			t.Errorf("padding %s: KS tells the days apart: %v, want %v (D = %.3f, critical %.3f)", tc.padding, got, tc.distinguishs, d, critical)
		}
	}
}

// fileSizes are the byte sizes of the batch files of one day (from the
// start), as apps download them.
func (s *simRegion) fileSizes(day int) []int {
	s.tb.Helper()
	from := s.start.Add(time.Duration(day) * 24 * time.Hour).Unix()
	var out []int
	for _, name := range s.catalog.BatchIndex(s.now) {
		rel := strings.TrimPrefix(name, "v1/exports/")
		var start, end int64
		var part int
		if _, err := fmtSscanf(rel, &start, &end, &part); err != nil {
			s.tb.Fatal(err)
		}
		if end <= from || end > from+86_400 {
			continue
		}
		f, err := s.catalog.File(s.now, rel)
		if err != nil {
			s.tb.Fatal(err)
		}
		out = append(out, len(f.Data))
	}
	return out
}

// realInRetention counts the real keys the files of the retention window
// hold: what a fresh install must get.
func (s *simRegion) realInRetention() int {
	n := 0
	for _, name := range s.catalog.BatchIndex(s.now) {
		keys, err := s.catalog.File(s.now, strings.TrimPrefix(name, "v1/exports/"))
		if err != nil {
			s.tb.Fatal(err)
		}
		n += s.countReal(keys.Data)
	}
	return n
}
