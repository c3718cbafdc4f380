// Package stats holds the figures a health authority follows its
// verification service by: per UTC day, for the region and for each
// provider, codes issued, used and expired, the time from issue to use,
// uploads and the keys they carried. The portal draws them and the stats
// API serves them; both hold back counts small enough to point at a person
// (Shown), so that no page or file says that one patient of a small lab
// uploaded on a given day.
package stats

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Days is how many days a report covers: the days a region keeps its
// submissions for (older uploads are gone from the state, so older days
// would read as days without uploads). A health authority that wants a
// longer history fetches the stats API daily, as the reference's did.
const Days = 14

// DefaultThreshold is the smallest count shown as it is: 1 to 9 read
// "<10".
const DefaultThreshold = 10

// Day is one UTC day's figures.
type Day struct {
	// Date is the day's midnight, UTC.
	Date time.Time
	// Issued counts codes issued that day; Used, codes used up by an app
	// that day; Expired, codes that ran out unused or were expired by
	// their provider that day (user reports included).
	Issued, Used, Expired int
	// MedianWait and MeanWait are the time from issue to use of the codes
	// used that day (0 when none was).
	MedianWait, MeanWait time.Duration
	// Uploads counts submissions accepted that day; Keys, the keys they
	// carried (padding is not uploaded, so it is not counted).
	Uploads, Keys int
}

// Series is the figures of the region (Provider "") or of one provider,
// oldest day first, ending today.
type Series struct {
	Provider string
	Days     []Day
}

// Report is the region's series and one per provider, in provider order.
type Report struct {
	Region    Series
	Providers []Series
}

// Compute reads the figures of the days days up to now's (UTC) from the
// state. Uploads are counted for the provider whose code authorized them;
// uploads under a certificate count for the region only (a certificate
// names its health authority, not the lab).
func Compute(f *fsm.FSM, now time.Time, days int) Report {
	c := newCounter(now, days)
	for _, code := range f.VerificationCodesAll() {
		c.code(code, now.Unix())
	}
	for _, s := range f.Submissions() {
		c.upload(s.Provider, s.TimeUnix, int(s.KeyCount))
	}
	return c.report()
}

// Of is the series of one provider: its own, or one of no figures on the
// report's days when it issued nothing and had no upload in them.
func (r Report) Of(provider string) Series {
	if i := slices.IndexFunc(r.Providers, func(s Series) bool { return s.Provider == provider }); i >= 0 {
		return r.Providers[i]
	}
	s := Series{Provider: provider, Days: make([]Day, len(r.Region.Days))}
	for i, d := range r.Region.Days {
		s.Days[i].Date = d.Date
	}
	return s
}

// counter gathers the figures of one report.
type counter struct {
	first, days int64 // the first day (days since 1970) and how many
	region      *tally
	providers   map[string]*tally
}

// tally is one series in the making: figures and waits per day.
type tally struct {
	days  []Day
	waits [][]time.Duration
}

func newCounter(now time.Time, days int) *counter {
	today := now.Unix() / 86400
	return &counter{first: today - int64(days) + 1, days: int64(days), region: newTally(days), providers: map[string]*tally{}}
}

func newTally(days int) *tally {
	return &tally{days: make([]Day, days), waits: make([][]time.Duration, days)}
}

// add applies fn to the day of unix in the region's tally and, for a
// provider, in its own; days outside the report are left out.
func (c *counter) add(provider string, unix int64, fn func(d *Day, waits *[]time.Duration)) {
	i := unix/86400 - c.first
	if unix <= 0 || i < 0 || i >= c.days {
		return
	}
	fn(&c.region.days[i], &c.region.waits[i])
	if provider == "" {
		return
	}
	t := c.providers[provider]
	if t == nil {
		t = newTally(int(c.days))
		c.providers[provider] = t
	}
	fn(&t.days[i], &t.waits[i])
}

// code counts a code's issue, use and expiry, each on its own day.
func (c *counter) code(code *fsmpb.VerificationCode, now int64) {
	p := code.GetProvider()
	c.add(p, code.GetIssuedUnix(), func(d *Day, _ *[]time.Duration) { d.Issued++ })
	if used := code.GetClaimedUnix(); used != 0 {
		wait := time.Duration(used-code.GetIssuedUnix()) * time.Second
		c.add(p, used, func(d *Day, w *[]time.Duration) { d.Used++; *w = append(*w, wait) })
		return
	}
	if end := expiry(code); end != 0 && end <= now {
		c.add(p, end, func(d *Day, _ *[]time.Duration) { d.Expired++ })
	}
}

// expiry is when an unused code stopped working: its provider's expiry,
// else the later of its two lifetimes.
func expiry(code *fsmpb.VerificationCode) int64 {
	if e := code.GetExpiredByUnix(); e != 0 {
		return e
	}
	return max(code.GetExpiresUnix(), code.GetLongExpiresUnix())
}

func (c *counter) upload(provider string, unix int64, keys int) {
	c.add(provider, unix, func(d *Day, _ *[]time.Duration) { d.Uploads++; d.Keys += keys })
}

func (c *counter) report() Report {
	r := Report{Region: c.region.series(c.first, "")}
	for p, t := range c.providers {
		r.Providers = append(r.Providers, t.series(c.first, p))
	}
	slices.SortFunc(r.Providers, func(a, b Series) int { return cmp.Compare(a.Provider, b.Provider) })
	return r
}

// series finishes a tally: dates, median and mean waits.
func (t *tally) series(first int64, provider string) Series {
	s := Series{Provider: provider, Days: t.days}
	for i := range s.Days {
		d := &s.Days[i]
		d.Date = time.Unix((first+int64(i))*86400, 0).UTC()
		if w := t.waits[i]; len(w) > 0 {
			slices.Sort(w)
			d.MedianWait = (w[(len(w)-1)/2] + w[len(w)/2]) / 2
			var sum time.Duration
			for _, x := range w {
				sum += x
			}
			d.MeanWait = sum / time.Duration(len(w))
		}
	}
	return s
}

// Visible says whether a count may be shown as it is: none, or at least
// threshold. A count from 1 to threshold-1 could point at a person.
func Visible(n, threshold int) bool { return n == 0 || n >= threshold }

// Shown is a day's figures as a page or a CSV file shows them: a count
// that is not Visible reads "<threshold", and the waits are held back
// ("") when fewer than threshold codes were used, since the median of
// three waits is three patients' times.
type Shown struct {
	Date                                 string
	Issued, Used, Expired, Uploads, Keys string
	MedianWaitMinutes, MeanWaitMinutes   string
}

// shownFigures says which of a day's figures may be shown as they are:
// each count that is Visible, the keys only with their uploads (14 keys
// are one upload), and the waits of at least threshold codes used (no
// use, no wait). Show and NewDocument both hold back by it.
type shownFigures struct {
	issued, used, expired, uploads, keys, waits bool
}

func figuresShown(d Day, threshold int) shownFigures {
	uploads := Visible(d.Uploads, threshold)
	return shownFigures{issued: Visible(d.Issued, threshold), used: Visible(d.Used, threshold), expired: Visible(d.Expired, threshold),
		uploads: uploads, keys: uploads && Visible(d.Keys, threshold), waits: d.Used > 0 && Visible(d.Used, threshold)}
}

// Show applies the threshold to a day.
func Show(d Day, threshold int) Shown {
	f := figuresShown(d, threshold)
	held := "<" + strconv.Itoa(threshold)
	text := func(n int, ok bool) string {
		if !ok {
			return held
		}
		return strconv.Itoa(n)
	}
	s := Shown{Date: d.Date.Format(time.DateOnly), Issued: text(d.Issued, f.issued), Used: text(d.Used, f.used),
		Expired: text(d.Expired, f.expired), Uploads: text(d.Uploads, f.uploads), Keys: text(d.Keys, f.keys)}
	if f.waits {
		s.MedianWaitMinutes = strconv.FormatFloat(d.MedianWait.Minutes(), 'f', 1, 64)
		s.MeanWaitMinutes = strconv.FormatFloat(d.MeanWait.Minutes(), 'f', 1, 64)
	}
	return s
}

// csvHeader names the columns of WriteCSV.
var csvHeader = []string{"date", "provider", "codes_issued", "codes_used", "codes_expired",
	"median_minutes_to_use", "mean_minutes_to_use", "uploads", "keys_uploaded"}

// WriteCSV writes the series' days as a CSV file with a header line, the
// region's rows (provider "all") first, each count held back as Show does.
func WriteCSV(w io.Writer, series []Series, threshold int) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("statistics CSV header: %w", err)
	}
	for _, s := range series {
		name := s.Provider
		if name == "" {
			name = "all"
		}
		for _, d := range s.Days {
			v := Show(d, threshold)
			if err := cw.Write([]string{v.Date, name, v.Issued, v.Used, v.Expired,
				v.MedianWaitMinutes, v.MeanWaitMinutes, v.Uploads, v.Keys}); err != nil {
				return fmt.Errorf("statistics CSV: %w", err)
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
