package feed_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
	"github.com/covid-backend/covid-backend/padding"
)

// simLoad is the load of the simulated region: uploads of 14 keys a day,
// and how the leader seals and pads.
type simLoad struct {
	uploadsPerDay int
	// padding is how batches are padded: "seal" (before version 9: a seal
	// every sealMin-sealMax when keys are due, each padded to padTarget
	// plus up to padJitter, as the measurement of issue 26 ran), "day"
	// (package padding: a seal at every interval, of a size drawn from
	// the day budget perDay) or "none" (a seal at every interval when keys
	// are due, unpadded: the baseline).
	padding              string
	interval             time.Duration
	sealMin, sealMax     time.Duration
	padTarget, padJitter int
	perDay               int
	// uploadsOn, when set, is the uploads of each day (by day number from
	// the start) instead of uploadsPerDay.
	uploadsOn             func(day int) int
	fillDays, measureDays int
	// joining, when set, is an app installed when the measured days begin.
	joining *simApp
	// apps keeps only the population's apps it names (all when nil).
	apps func(*simApp) bool
}

// nextSeal is when the leader seals after a seal at t.
func (l simLoad) nextSeal(t time.Time) time.Time {
	if l.padding != "seal" {
		return t.Add(l.interval)
	}
	gap, _ := rand.Int(rand.Reader, big.NewInt(int64(l.sealMax-l.sealMin)))
	return t.Add(l.sealMin + time.Duration(gap.Int64()))
}

// simApp is one app's way of syncing: which list it reads, how often, and
// whether it fetches every name it has not seen or the lines after the
// last name it processed (the Android reference app's way: when that name
// is gone it starts again from the top).
type simApp struct {
	name     string
	list     string // "index" or "batches"
	every    time.Duration
	lastSeen bool
	// what it holds between polls
	seen     map[string]bool
	last     string
	nextPoll time.Time
	// cursor: an app that keeps a cursor (docs/design.md, "Export
	// files"): its first poll reads index.txt and takes every roll-up, the
	// cursor then the end of the newest; each later poll reads batches.txt
	// and takes the batches that end after the cursor. counts, when set,
	// counts the fetches of each real key.
	cursor    bool
	cursorEnd int64
	counts    map[[16]byte]int
	// what it fetched in the measured days
	files, bytes, realFetched, padding int
}

// simRegion is the state machine of a one-node region with its catalog,
// the simulated clock, and every real key uploaded.
type simRegion struct {
	tb      testing.TB
	now     time.Time
	region  *fsmtest.Region
	catalog *feed.Catalog
	real    map[[16]byte]bool
	next    uint64
	seq     uint32
	start   time.Time
	// sizes are the batches sealed, in order.
	sizes []simBatch
	// listed is the batches.txt an app read last, to check that no name
	// leaves it before its day leaves retention.
	listed []string
	// uploaded is when each real key was uploaded, until a batch publishes
	// it; waited is how long each waited from its upload to its batch.
	uploaded map[[16]byte]time.Time
	waited   []time.Duration
	// random draws the batch sizes: seeded, so a run is the same each time.
	random io.Reader
}

// simBatch is one sealed batch: the day it was sealed on (from the start),
// its keys in all and its real ones.
type simBatch struct{ day, keys, real int }

func newSimRegion(tb testing.TB, start time.Time) *simRegion {
	tb.Helper()
	s := &simRegion{tb: tb, now: start, start: start, real: map[[16]byte]bool{}, uploaded: map[[16]byte]time.Time{},
		random: mathrand.NewChaCha8([32]byte{26})}
	s.region = fsmtest.New(func() time.Time { return s.now })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ctx := context.Background()
	if err := command.PutAuthority(ctx, s.region, &fsmpb.Authority{Issuer: "ha", Audience: "aud", AppIds: []string{"app"},
		Keys: []*fsmpb.AuthorityKey{{Kid: "k1", PublicKeyDer: der}}}); err != nil {
		tb.Fatal(err)
	}
	s.catalog = feed.NewCatalog(feed.Config{Region: "sim", Root: "v1/exports",
		SigningKeys: []export.SigningKey{{Private: key, KeyID: "310", KeyVersion: "v1"}}}, s.region.State)
	return s
}

// upload publishes one upload of 14 keys, one of each of the 14 days
// before today.
func (s *simRegion) upload() {
	s.tb.Helper()
	today := int32(s.now.Unix()/600) / 144 * 144
	p := &fsmpb.Publish{AppId: "app", Issuer: "ha", AuthorityKid: "k1", CertificateDigest: make([]byte, 32), SubmissionId: make([]byte, 16)}
	binary.BigEndian.PutUint64(p.SubmissionId, s.next)
	binary.BigEndian.PutUint64(p.CertificateDigest, s.next)
	for d := int32(1); d <= 14; d++ {
		var data [16]byte
		s.random.Read(data[:]) // seeded: a run is the same each time
		s.real[data] = true
		s.uploaded[data] = s.now
		p.Keys = append(p.Keys, &fsmpb.Key{KeyData: data[:], RollingStart: today - 144*d, RollingPeriod: 144, TransmissionRisk: 2, ReportType: 1})
	}
	s.next++
	if _, err := command.Publish(context.Background(), s.region, p); err != nil {
		s.tb.Fatal(err)
	}
}

// seal seals a batch padded as the leader pads it, and keeps its size.
func (s *simRegion) seal(load simLoad) {
	s.tb.Helper()
	target, fixed := 0, false
	switch load.padding {
	case "seal":
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(load.padJitter)+1))
		target = load.padTarget + int(j.Int64())
	case "day":
		plan := padding.Plan{PerDay: load.perDay, Interval: load.interval}
		var err error
		if target, err = plan.Size(s.random, plan.Bucket(s.region.State.Backlog(s.now.Unix()), false)); err != nil {
			s.tb.Fatal(err)
		}
		fixed = true
	}
	pad := make([][]byte, target)
	for i := range pad {
		pad[i] = make([]byte, fsm.KeyLen)
		s.random.Read(pad[i])
	}
	s.seq++
	res, err := command.Seal(context.Background(), s.region, &fsmpb.Seal{Seq: s.seq, TargetKeys: uint32(target), Padding: pad, Origin: "sim",
		Signers: []*fsmpb.ExportSigner{{KeyId: "310", KeyVersion: "v1"}}, FixedSize: fixed})
	if err != nil {
		s.seq--
		if !strings.Contains(err.Error(), string(command.CodeNothingToSeal)) {
			s.tb.Fatal(err)
		}
		return
	}
	s.sizes = append(s.sizes, simBatch{day: int(s.now.Sub(s.start) / (24 * time.Hour)),
		keys: int(res.GetKeys() + res.GetPadding() + res.GetRevised()), real: int(res.GetKeys())})
	keys, _, _ := s.region.State.BatchKeys(res.GetSeq())
	for _, k := range keys {
		if t, ok := s.uploaded[k.Data]; ok {
			s.waited = append(s.waited, s.now.Sub(t))
			delete(s.uploaded, k.Data)
		}
	}
}

// delays tells how long keys waited from upload to batch: the median, the
// 99th percentile and the longest.
func (s *simRegion) delays() string {
	w := slices.Sorted(slices.Values(s.waited))
	if len(w) == 0 {
		return "no key published"
	}
	return fmt.Sprintf("keys wait for their batch %v at the median, %v at the 99th percentile, %v at most",
		w[len(w)/2].Round(time.Second), w[len(w)*99/100].Round(time.Second), w[len(w)-1].Round(time.Second))
}

// expire applies 14 days of retention, floored to whole days.
func (s *simRegion) expire() {
	cut := s.now.Unix() - 14*86_400
	cut -= cut % 86_400
	if _, err := command.Expire(context.Background(), s.region, &fsmpb.Expire{CutoffUnix: cut}); err != nil {
		s.tb.Fatal(err)
	}
}

// list reads index.txt or batches.txt as an app does (gzip-compressed,
// as the phones' HTTP stacks ask for it); batches.txt is checked to keep
// every name it listed until its day leaves retention.
func (s *simRegion) list(which string) (names []string, size int) {
	f := s.catalog.IndexFile(s.now, which == "index")
	names = strings.Fields(string(f.Data))
	if which == "batches" {
		s.checkKept(names)
	}
	return names, len(f.Gzip)
}

// checkKept fails when a name batches.txt listed before is gone while its
// day is still in the retention window: an app that holds it as the last
// one it saw would start again from the top.
func (s *simRegion) checkKept(names []string) {
	s.tb.Helper()
	now := make(map[string]bool, len(names))
	for _, n := range names {
		now[n] = true
	}
	oldest := s.now.Truncate(24*time.Hour).AddDate(0, 0, -14).Unix()
	for _, n := range s.listed {
		if now[n] {
			continue
		}
		var start, end int64
		var part int
		if _, err := fmtSscanf(strings.TrimPrefix(n, "v1/exports/"), &start, &end, &part); err != nil {
			s.tb.Fatalf("batches.txt name %s: %v", n, err)
		}
		if (end-1)/86_400*86_400 >= oldest {
			s.tb.Errorf("at %v batches.txt no longer lists %s, whose day is still kept", s.now, n)
		}
	}
	s.listed = names
}

// fetch downloads a file and counts its records: real keys by key, and
// padding.
func (s *simRegion) fetch(a *simApp, name string) {
	s.tb.Helper()
	f, err := s.catalog.File(s.now, strings.TrimPrefix(name, "v1/exports/"))
	if err != nil {
		s.tb.Fatalf("%s fetches %s: %v", a.name, name, err)
	}
	d, err := export.Decode(f.Data)
	if err != nil {
		s.tb.Fatal(err)
	}
	a.files++
	a.bytes += len(f.Data)
	real := s.countReal(f.Data)
	a.realFetched += real
	a.padding += len(d.File.Keys) + len(d.File.RevisedKeys) - real
	for _, k := range d.File.Keys {
		if a.counts != nil && s.real[k.Data] {
			a.counts[k.Data]++
		}
	}
}

// countReal counts the real keys of an export file.
func (s *simRegion) countReal(data []byte) int {
	s.tb.Helper()
	d, err := export.Decode(data)
	if err != nil {
		s.tb.Fatal(err)
	}
	n := 0
	for _, k := range slices.Concat(d.File.Keys, d.File.RevisedKeys) {
		if s.real[k.Data] {
			n++
		}
	}
	return n
}

// fmtSscanf reads a batch file's name: its window and part.
func fmtSscanf(rel string, start, end *int64, part *int) (int, error) {
	return fmt.Sscanf(rel, "%d-%d-%d.zip", start, end, part)
}

// poll is one app's poll: the list, then the files its way of syncing
// fetches; measuring says whether it counts.
func (s *simRegion) poll(a *simApp, measuring bool) {
	names, size := s.list(a.list)
	fetch := func(name string) {
		if measuring {
			s.fetch(a, name)
		}
	}
	if measuring {
		a.bytes += size
	}
	if a.cursor {
		s.pollCursor(a, fetch)
		return
	}
	if a.lastSeen {
		from := slices.Index(names, a.last) + 1 // gone (or none yet): from the top
		for _, name := range names[from:] {
			fetch(name)
		}
		if len(names) > 0 {
			a.last = names[len(names)-1]
		}
		return
	}
	for _, name := range names {
		if !a.seen[name] {
			fetch(name)
			a.seen[name] = true
		}
	}
}

// pollCursor is a poll of an app that keeps a cursor: the whole window
// from index.txt first, then the batches after the cursor.
func (s *simRegion) pollCursor(a *simApp, fetch func(string)) {
	s.tb.Helper()
	list := "batches"
	if a.cursorEnd == 0 {
		list = "index"
	}
	names, _ := s.list(list)
	for _, name := range names {
		var start, end int64
		var part int
		if _, err := fmtSscanf(strings.TrimPrefix(strings.TrimPrefix(name, "v1/exports/"), "day/"), &start, &end, &part); err != nil {
			s.tb.Fatal(err)
		}
		if end > a.cursorEnd || list == "index" {
			fetch(name)
		}
		a.cursorEnd = max(a.cursorEnd, end)
	}
}

// simApps are the apps of the population: each list read every 4 h and
// every hour, by each way of syncing.
func simApps() []*simApp {
	var apps []*simApp
	for _, list := range []string{"index", "batches"} {
		for _, every := range []time.Duration{4 * time.Hour, time.Hour} {
			for _, last := range []bool{false, true} {
				way := "every new name"
				if last {
					way = "last seen"
				}
				apps = append(apps, &simApp{name: fmt.Sprintf("%s.txt every %v, %s", list, every, way), list: list, every: every, lastSeen: last,
					seen: map[string]bool{}})
			}
		}
	}
	return apps
}

// simRun is what a simulation measured: the apps, a fresh install's fetch
// of each list at the end, the real keys uploaded in the measured days,
// and the region (its batches' sizes).
type simRun struct {
	apps, fresh  []*simApp
	realInWindow int
	region       *simRegion
}

// simulate runs the load through fill and measured days.
func simulate(tb testing.TB, load simLoad) simRun {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := newSimRegion(tb, start)
	apps := simApps()
	if load.apps != nil {
		apps = slices.DeleteFunc(apps, func(a *simApp) bool { return !load.apps(a) })
	}
	for i, a := range apps {
		a.nextPoll = start.Add(time.Duration(i) * 7 * time.Minute) // apps poll at their own times
	}
	if load.joining != nil {
		load.joining.nextPoll = start.Add(time.Duration(load.fillDays)*24*time.Hour + 17*time.Minute)
		apps = append(apps, load.joining)
	}
	end := start.Add(time.Duration(load.fillDays+load.measureDays) * 24 * time.Hour)
	measureFrom := start.Add(time.Duration(load.fillDays) * 24 * time.Hour)
	uploads := func(day int) int {
		if load.uploadsOn != nil {
			return load.uploadsOn(day)
		}
		return load.uploadsPerDay
	}
	nextUpload, nextSeal, nextExpire := start, load.nextSeal(start), start
	before := map[[16]byte]bool{}
	for s.now.Before(end) {
		next := slices.MinFunc([]time.Time{nextUpload, nextSeal, nextExpire}, func(a, b time.Time) int { return a.Compare(b) })
		for _, a := range apps {
			if a.nextPoll.Before(next) {
				next = a.nextPoll
			}
		}
		s.now = next
		if !s.now.Before(measureFrom) && len(before) == 0 {
			for k := range s.real {
				before[k] = true
			}
			before[[16]byte{}] = true // the window began, even before any key
		}
		switch {
		case !nextUpload.After(s.now):
			day := int(s.now.Sub(start) / (24 * time.Hour))
			if n := uploads(day); n > 0 {
				s.upload()
				nextUpload = nextUpload.Add(24 * time.Hour / time.Duration(n))
			} else {
				nextUpload = start.Add(time.Duration(day+1) * 24 * time.Hour)
			}
		case !nextSeal.After(s.now):
			s.seal(load)
			nextSeal = load.nextSeal(nextSeal)
		case !nextExpire.After(s.now):
			s.expire()
			nextExpire = nextExpire.Add(time.Hour)
		default:
			for _, a := range apps {
				if !a.nextPoll.After(s.now) {
					s.poll(a, !s.now.Before(measureFrom))
					a.nextPoll = s.now.Add(a.every)
				}
			}
		}
	}
	run := simRun{apps: apps, region: s}
	for k := range s.real {
		if !before[k] {
			run.realInWindow++
		}
	}
	for _, list := range []string{"index", "batches"} {
		a := &simApp{name: "fresh install, " + list + ".txt", list: list, seen: map[string]bool{}}
		s.poll(a, true)
		run.fresh = append(run.fresh, a)
	}
	return run
}

// dup is how many times the app fetched each real key uploaded in the
// measured days.
func (r simRun) dup(a *simApp) float64 {
	return float64(a.realFetched) / float64(max(1, r.realInWindow))
}

// table prints the run as the README's figures table has it.
func (r simRun) table(days int) string {
	var out strings.Builder
	fmt.Fprintf(&out, "| app behaviour | files | bytes (%d days) | bytes per real key | times each key is fetched | padding share |\n|---|---:|---:|---:|---:|---:|\n", days)
	for _, a := range r.apps {
		fmt.Fprintf(&out, "| %s | %d | %.2f MB | %d | %.2f | %.1f %% |\n", a.name, a.files, float64(a.bytes)/1e6, a.bytes/max(1, r.realInWindow), r.dup(a), paddingShare(a))
	}
	for _, a := range r.fresh {
		fmt.Fprintf(&out, "| %s | %d | %.2f MB | | | %.1f %% |\n", a.name, a.files, float64(a.bytes)/1e6, paddingShare(a))
	}
	return out.String()
}

func paddingShare(a *simApp) float64 {
	return 100 * float64(a.padding) / float64(max(1, a.padding+a.realFetched))
}

// BenchmarkAppPopulation simulates a region (one node's state machine and
// catalog, the clock moved through 13 days of fill and 2 measured days
// across a UTC midnight; 200 uploads of 14 keys a day) and the apps that
// download from it: each list read every 4 h and every hour, by "every new
// name" and by "last seen", and a fresh install at the end. It prints what
// each fetched in the measured days (lists as gzip-compressed): files,
// bytes, bytes per real key, how many times each key was fetched, and the
// padding's share of the records; for padding by the day (the default),
// for no padding (the baseline), and for the padding of each seal before
// version 9 (the measurement of issue 26).
//
//	go test -run XXX -bench BenchmarkAppPopulation -benchtime 1x ./feed/
func BenchmarkAppPopulation(b *testing.B) {
	loads := []struct {
		name string
		load simLoad
	}{
		{"by the day", simLoad{padding: "day", interval: 10 * time.Minute, perDay: fsm.DefaultPaddingKeysPerDay}},
		{"no padding", simLoad{padding: "none", interval: 10 * time.Minute}},
		{"each seal (before)", simLoad{padding: "seal", sealMin: 10 * time.Minute, sealMax: 60 * time.Minute, padTarget: 1000, padJitter: 100}},
	}
	for _, l := range loads {
		b.Run(strings.ReplaceAll(l.name, " ", "-"), func(b *testing.B) {
			load := l.load
			load.uploadsPerDay, load.fillDays, load.measureDays = 200, 13, 2
			for range b.N {
				run := simulate(b, load)
				for _, a := range run.apps {
					b.ReportMetric(run.dup(a), "dup-"+strings.NewReplacer(" ", "", ",", "-", ".txt", "").Replace(a.name))
				}
				// Printed, not logged: a benchmark's log is cut at ten lines.
				fmt.Printf("\npadding %s, 200 uploads a day (%s):\n%s", l.name, run.region.delays(), run.table(load.measureDays))
			}
		})
	}
}
