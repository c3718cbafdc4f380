package feed_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math/big"
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
)

// simLoad is the load of the simulated region: uploads of 14 keys a day,
// a seal every 10 to 60 minutes, padding to 1,000-1,100 keys a seal, as
// the measurement of issue 26 ran.
type simLoad struct {
	uploadsPerDay         int
	sealMin, sealMax      time.Duration
	padTarget, padJitter  int
	fillDays, measureDays int
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
}

func newSimRegion(tb testing.TB, start time.Time) *simRegion {
	tb.Helper()
	s := &simRegion{tb: tb, now: start, real: map[[16]byte]bool{}}
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
		rand.Read(data[:])
		s.real[data] = true
		p.Keys = append(p.Keys, &fsmpb.Key{KeyData: data[:], RollingStart: today - 144*d, RollingPeriod: 144, TransmissionRisk: 2, ReportType: 1})
	}
	s.next++
	if _, err := command.Publish(context.Background(), s.region, p); err != nil {
		s.tb.Fatal(err)
	}
}

// seal seals a batch padded as the leader pads it.
func (s *simRegion) seal(load simLoad) {
	s.tb.Helper()
	target := load.padTarget
	if load.padJitter > 0 {
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(load.padJitter)))
		target += int(j.Int64())
	}
	padding := make([][]byte, target)
	for i := range padding {
		padding[i] = make([]byte, fsm.KeyLen)
		rand.Read(padding[i])
	}
	s.seq++
	_, err := command.Seal(context.Background(), s.region, &fsmpb.Seal{Seq: s.seq, TargetKeys: uint32(target), Padding: padding, Origin: "sim",
		Signers: []*fsmpb.ExportSigner{{KeyId: "310", KeyVersion: "v1"}}})
	if err != nil {
		s.seq--
		if !strings.Contains(err.Error(), string(command.CodeNothingToSeal)) {
			s.tb.Fatal(err)
		}
	}
}

// expire applies 14 days of retention, floored to whole days.
func (s *simRegion) expire() {
	cut := s.now.Unix() - 14*86_400
	cut -= cut % 86_400
	if _, err := command.Expire(context.Background(), s.region, &fsmpb.Expire{CutoffUnix: cut}); err != nil {
		s.tb.Fatal(err)
	}
}

// list reads index.txt or batches.txt as an app does.
func (s *simRegion) list(which string) (names []string, size int) {
	f := s.catalog.IndexFile(s.now, which == "index")
	return strings.Fields(string(f.Data)), len(f.Data)
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
	for _, k := range slices.Concat(d.File.Keys, d.File.RevisedKeys) {
		if s.real[k.Data] {
			a.realFetched++
		} else {
			a.padding++
		}
	}
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

// simulate runs the load through fill and measured days and returns the
// apps, and a fresh install's fetch of each list at the end.
func simulate(tb testing.TB, load simLoad) (apps []*simApp, fresh []*simApp, realInWindow int) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := newSimRegion(tb, start)
	for _, list := range []string{"index", "batches"} {
		for _, every := range []time.Duration{4 * time.Hour, time.Hour} {
			for _, last := range []bool{false, true} {
				if list == "batches" && last {
					continue // batches.txt only appends: the two ways fetch alike
				}
				way := "every new name"
				if last {
					way = "last seen"
				}
				apps = append(apps, &simApp{name: fmt.Sprintf("%s.txt every %v, %s", list, every, way), list: list, every: every, lastSeen: last,
					seen: map[string]bool{}})
			}
		}
	}
	end := start.Add(time.Duration(load.fillDays+load.measureDays) * 24 * time.Hour)
	measureFrom := start.Add(time.Duration(load.fillDays) * 24 * time.Hour)
	uploadGap := 24 * time.Hour / time.Duration(load.uploadsPerDay)
	nextUpload, nextSeal, nextExpire := start, start.Add(load.sealMin), start
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
			s.upload()
			nextUpload = nextUpload.Add(uploadGap)
		case !nextSeal.After(s.now):
			s.seal(load)
			gap, _ := rand.Int(rand.Reader, big.NewInt(int64(load.sealMax-load.sealMin)))
			nextSeal = nextSeal.Add(load.sealMin + time.Duration(gap.Int64()))
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
	for k := range s.real {
		if !before[k] {
			realInWindow++
		}
	}
	for _, list := range []string{"index", "batches"} {
		a := &simApp{name: "fresh install, " + list + ".txt", list: list, seen: map[string]bool{}}
		s.poll(a, true)
		fresh = append(fresh, a)
	}
	return apps, fresh, realInWindow
}

// BenchmarkAppPopulation simulates a region (one node's state machine and
// catalog, the clock moved through 13 days of fill and 2 measured days
// across a UTC midnight; 200 uploads of 14 keys a day, a seal every 10-60
// minutes padded to 1,000-1,100 keys) and the apps that download from it:
// each list read every 4 h and every hour, index.txt both by "every new
// name" and by "last seen", and a fresh install at the end. It prints what
// each fetched in the measured days: files, bytes, bytes per real key, how
// many times each key was fetched, and the padding's share of the records.
//
//	go test -run XXX -bench BenchmarkAppPopulation -benchtime 1x ./feed/
func BenchmarkAppPopulation(b *testing.B) {
	load := simLoad{uploadsPerDay: 200, sealMin: 10 * time.Minute, sealMax: 60 * time.Minute, padTarget: 1000, padJitter: 100, fillDays: 13, measureDays: 2}
	for range b.N {
		apps, fresh, window := simulate(b, load)
		var out strings.Builder
		fmt.Fprintf(&out, "\n| app behaviour | files | bytes (%d days) | bytes per real key | times each key is fetched | padding share |\n|---|---:|---:|---:|---:|---:|\n", load.measureDays)
		for _, a := range apps {
			dup := float64(a.realFetched) / float64(max(1, window)) // real keys fetched by each key uploaded in the window
			fmt.Fprintf(&out, "| %s | %d | %.2f MB | %d | %.2f | %.1f %% |\n", a.name, a.files, float64(a.bytes)/1e6, a.bytes/max(1, window), dup,
				100*float64(a.padding)/float64(max(1, a.padding+a.realFetched)))
			b.ReportMetric(dup, "dup-"+strings.NewReplacer(" ", "", ",", "-", ".txt", "").Replace(a.name))
		}
		for _, a := range fresh {
			fmt.Fprintf(&out, "| %s | %d | %.2f MB | | | %.1f %% |\n", a.name, a.files, float64(a.bytes)/1e6, 100*float64(a.padding)/float64(max(1, a.padding+a.realFetched)))
		}
		b.Log(out.String())
	}
}
