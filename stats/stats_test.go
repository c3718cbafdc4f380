package stats_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
	"github.com/covid-backend/covid-backend/stats"
)

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// knownRegion is a region with known figures, seen at 10:00 of day D
// (2026-03-10):
//   - lab: 12 codes issued on D-1 at 08:00; 10 used by apps and 1 by a
//     code upload of 5 keys, k*10 minutes after issue (k = 1..11: median
//     and mean 60 minutes); the 12th runs out unused at 11:00 (codes live
//     3 hours);
//   - clinic: 3 codes issued on D, 1 of them expired by the clinic;
//   - one code of the lab issued 20 days before, outside the report;
//   - one upload under a certificate on D (3 keys), the region's only.
func knownRegion(t *testing.T) (*fsmtest.Region, time.Time) {
	t.Helper()
	ctx := context.Background()
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	now := day.Add(-20 * 24 * time.Hour)
	r := fsmtest.New(func() time.Time { return now })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	issue := func(uuid, provider string) {
		t.Helper()
		_, err := command.IssueVerificationCode(ctx, r, &fsmpb.VerificationCode{Uuid: uuid, Provider: provider,
			ShortHash: hashOf("s" + uuid), LongHash: hashOf("l" + uuid), TestType: "confirmed",
			ShortTtlSeconds: 3 * 3600, LongTtlSeconds: 3 * 3600})
		must(err)
	}
	must(command.PutProvider(ctx, r, &fsmpb.Provider{Id: "lab", Name: "Lab", TokenHash: hashOf("lab")}))
	must(command.PutProvider(ctx, r, &fsmpb.Provider{Id: "clinic", Name: "Clinic", TokenHash: hashOf("clinic")}))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	must(err)
	must(command.PutAuthority(ctx, r, &fsmpb.Authority{Issuer: "https://ha.example.org", Audience: "aud",
		AppIds: []string{"org.example.app"}, Keys: []*fsmpb.AuthorityKey{{Kid: "v1", PublicKeyDer: der}}}))
	issue("old", "lab")

	now = day.Add(-24*time.Hour + 8*time.Hour)
	for i := range 12 {
		issue(fmt.Sprint("lab-", i), "lab")
	}
	issued := now
	for k := 1; k <= 10; k++ {
		now = issued.Add(time.Duration(k) * 10 * time.Minute)
		_, err := command.ClaimCode(ctx, r, &fsmpb.ClaimCode{Hashes: [][]byte{hashOf(fmt.Sprint("slab-", k-1))},
			TokenId: fmt.Sprint("t", k), TokenTtlSeconds: 3600})
		must(err)
	}
	now = issued.Add(110 * time.Minute)
	_, err = command.Publish(ctx, r, &fsmpb.Publish{SubmissionId: bytes.Repeat([]byte{1}, 16), AppId: "org.example.app",
		Issuer: "code", VerificationCodeHashes: [][]byte{hashOf("llab-10")}, Keys: keys(1, 5)})
	must(err)

	now = day.Add(9 * time.Hour)
	for i := range 3 {
		issue(fmt.Sprint("clinic-", i), "clinic")
	}
	_, err = command.ExpireVerificationCode(ctx, r, "clinic-0", "clinic")
	must(err)
	_, err = command.Publish(ctx, r, &fsmpb.Publish{SubmissionId: bytes.Repeat([]byte{2}, 16), AppId: "org.example.app",
		Issuer: "https://ha.example.org", CertificateDigest: hashOf("cert"), AuthorityKid: "v1", Keys: keys(10, 3)})
	must(err)
	return r, day.Add(10 * time.Hour)
}

func keys(first, n int) []*fsmpb.Key {
	out := make([]*fsmpb.Key, n)
	for i := range out {
		out[i] = &fsmpb.Key{KeyData: bytes.Repeat([]byte{byte(first + i)}, 16), RollingStart: 2_960_000 + int32(i)*144,
			RollingPeriod: 144, TransmissionRisk: 2, ReportType: 1}
	}
	return out
}

// The figures of a region with known codes and uploads, per day, for the
// region and for each provider.
func TestComputeKnownRegion(t *testing.T) {
	r, now := knownRegion(t)
	rep := stats.Compute(r.State, now, stats.Days)
	if len(rep.Region.Days) != stats.Days || rep.Region.Days[stats.Days-1].Date.Format(time.DateOnly) != "2026-03-10" {
		t.Fatalf("the report's days: %d, ending %v", len(rep.Region.Days), rep.Region.Days[len(rep.Region.Days)-1].Date)
	}
	if len(rep.Providers) != 2 || rep.Providers[0].Provider != "clinic" || rep.Providers[1].Provider != "lab" {
		t.Fatalf("providers: %+v", rep.Providers)
	}
	yesterday, today := stats.Days-2, stats.Days-1
	want := []struct {
		name string
		got  stats.Day
		want stats.Day
	}{
		{"region yesterday", rep.Region.Days[yesterday], stats.Day{Issued: 12, Used: 11, Expired: 1,
			MedianWait: time.Hour, MeanWait: time.Hour, Uploads: 1, Keys: 5}},
		{"region today", rep.Region.Days[today], stats.Day{Issued: 3, Expired: 1, Uploads: 1, Keys: 3}},
		{"lab yesterday", rep.Providers[1].Days[yesterday], stats.Day{Issued: 12, Used: 11, Expired: 1,
			MedianWait: time.Hour, MeanWait: time.Hour, Uploads: 1, Keys: 5}},
		{"lab today", rep.Providers[1].Days[today], stats.Day{}},
		{"clinic today", rep.Providers[0].Days[today], stats.Day{Issued: 3, Expired: 1}},
	}
	for _, w := range want {
		w.want.Date = w.got.Date
		if w.got != w.want {
			t.Errorf("%s: %+v, want %+v", w.name, w.got, w.want)
		}
	}
	var total int
	for _, d := range rep.Region.Days {
		total += d.Issued
	}
	if total != 15 {
		t.Errorf("codes issued in the report: %d, want 15 (the code of 20 days ago is outside)", total)
	}
}

// Counts from 1 to 9 are held back, on pages and in CSV; so are the waits
// of fewer than 10 codes used, and the keys of fewer than 10 uploads.
func TestShowHoldsBackSmallCounts(t *testing.T) {
	for _, tc := range []struct {
		day  stats.Day
		want stats.Shown
	}{
		{stats.Day{}, stats.Shown{Issued: "0", Used: "0", Expired: "0", Uploads: "0", Keys: "0"}},
		{stats.Day{Issued: 12, Used: 11, Expired: 1, MedianWait: time.Hour, MeanWait: 90 * time.Second, Uploads: 1, Keys: 14},
			stats.Shown{Issued: "12", Used: "11", Expired: "<10", MedianWaitMinutes: "60.0", MeanWaitMinutes: "1.5", Uploads: "<10", Keys: "<10"}},
		{stats.Day{Issued: 9, Used: 9, MedianWait: time.Hour, Uploads: 10, Keys: 140},
			stats.Shown{Issued: "<10", Used: "<10", Expired: "0", Uploads: "10", Keys: "140"}},
	} {
		got := stats.Show(tc.day, stats.DefaultThreshold)
		tc.want.Date = got.Date
		if got != tc.want {
			t.Errorf("Show(%+v) = %+v, want %+v", tc.day, got, tc.want)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	r, now := knownRegion(t)
	rep := stats.Compute(r.State, now, stats.Days)
	var b bytes.Buffer
	if err := stats.WriteCSV(&b, append([]stats.Series{rep.Region}, rep.Providers...), stats.DefaultThreshold); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+3*stats.Days {
		t.Fatalf("%d rows, want a header and %d", len(rows), 3*stats.Days)
	}
	want := map[string]string{
		"2026-03-09 all":    "12,11,<10,60.0,60.0,<10,<10",
		"2026-03-09 lab":    "12,11,<10,60.0,60.0,<10,<10",
		"2026-03-10 clinic": "<10,0,<10,,,0,0",
	}
	for _, row := range rows[1:] {
		if w, ok := want[row[0]+" "+row[1]]; ok {
			if got := strings.Join(row[2:], ","); got != w {
				t.Errorf("%s %s: %v, want %s", row[0], row[1], row[2:], w)
			}
			delete(want, row[0]+" "+row[1])
		}
	}
	if len(want) > 0 {
		t.Errorf("rows missing: %v", want)
	}
}
