package portal

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
)

// chartDays is how many days the console's charts show.
const chartDays = 14

// chart is one bar chart, drawn by the server as SVG.
type chart struct {
	Title string
	SVG   template.HTML
}

// charts are the console's figures of the last 14 days: codes issued and
// used, minutes from issue to use, uploads, keys published, batches in
// from other regions and out.
func (p *Portal) charts() []chart {
	f := p.region.FSM()
	today := p.cfg.Now().Unix() / 86400
	day := func(unix int64) int { return int(today - unix/86400) } // 0: today
	var issued, used, uploads, keys, in, out [chartDays]float64
	var waits [chartDays][]float64
	add := func(series *[chartDays]float64, unix int64, n float64) {
		if d := day(unix); d >= 0 && d < chartDays {
			series[chartDays-1-d] += n
		}
	}
	for _, c := range f.VerificationCodesAll() {
		add(&issued, c.GetIssuedUnix(), 1)
		if c.GetClaimedUnix() != 0 {
			add(&used, c.GetClaimedUnix(), 1)
			if d := day(c.GetClaimedUnix()); d >= 0 && d < chartDays {
				waits[chartDays-1-d] = append(waits[chartDays-1-d], float64(c.GetClaimedUnix()-c.GetIssuedUnix())/60)
			}
		}
	}
	for _, s := range f.Submissions() {
		add(&uploads, s.TimeUnix, 1)
	}
	for _, b := range f.Batches() {
		add(&keys, b.EndUnix, float64(b.Keys))
		add(&out, b.EndUnix, 1)
	}
	for _, r := range f.Trusted() {
		for _, b := range f.ForeignBatches(r.GetRegion()) {
			add(&in, b.GetEndUnix(), 1)
		}
	}
	var median [chartDays]float64
	for i, w := range waits {
		if len(w) > 0 {
			slices.Sort(w)
			median[i] = w[len(w)/2]
		}
	}
	return []chart{
		{msg("Codes issued per day"), bars(issued)}, {msg("Codes used per day"), bars(used)},
		{msg("Minutes from issue to use (median)"), bars(median)}, {msg("Uploads per day"), bars(uploads)},
		{msg("Keys published per day (padding left out)"), bars(keys)},
		{msg("Federation batches in per day"), bars(in)}, {msg("Own batches out per day"), bars(out)},
	}
}

// bars draws a series as an SVG bar chart, oldest day left. Only numbers
// reach the markup, so it is safe as HTML.
func bars(v [chartDays]float64) template.HTML {
	const w, h, bw = 364, 110, 22
	top := slices.Max(v[:])
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">`, w, h+18)
	for i, x := range v {
		bh := 0.0
		if top > 0 {
			bh = x / top * h
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="#0b4f6c"><title>%.0f</title></rect>`, i*26, h-bh, bw, bh, x)
	}
	fmt.Fprintf(&b, `<text x="0" y="%d" font-size="11">%d days ago</text><text x="%d" y="%d" font-size="11" text-anchor="end">today · max %.0f</text></svg>`,
		h+14, chartDays-1, w, h+14, top)
	return template.HTML(b.String())
}
