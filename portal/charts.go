package portal

import (
	"fmt"
	"html"
	"html/template"
	"slices"
	"strings"

	"github.com/covid-backend/covid-backend/stats"
)

// chartDays is how many days the console's charts show: the days the
// region's statistics cover.
const chartDays = stats.Days

// chart is one bar chart, drawn by the server as SVG.
type chart struct {
	Title string
	SVG   template.HTML
}

// charts are the console's figures of the last 14 days: codes issued and
// used, minutes from issue to use and uploads (the region's statistics,
// stats.Compute, exact: operators only), keys published, batches in from
// other regions and out.
func (p *Portal) charts(l lang) []chart {
	f := p.region.FSM()
	var issued, used, median, uploads, keys, in, out [chartDays]float64
	for i, d := range stats.Compute(f, p.cfg.Now(), chartDays).Region.Days {
		issued[i], used[i], median[i], uploads[i] = float64(d.Issued), float64(d.Used), d.MedianWait.Minutes(), float64(d.Uploads)
	}
	today := p.cfg.Now().Unix() / 86400
	add := func(series *[chartDays]float64, unix int64, n float64) {
		if d := int(today - unix/86400); d >= 0 && d < chartDays {
			series[chartDays-1-d] += n
		}
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
	return []chart{
		{msg("Codes issued per day"), bars(l, issued)}, {msg("Codes used per day"), bars(l, used)},
		{msg("Minutes from issue to use (median)"), bars(l, median)}, {msg("Uploads per day"), bars(l, uploads)},
		{msg("Keys published per day (padding left out)"), bars(l, keys)},
		{msg("Federation batches in per day"), bars(l, in)}, {msg("Own batches out per day"), bars(l, out)},
	}
}

// bar is one day's bar of a chart: how high, its colour, and what its
// title says (the number, or that it is held back).
type bar struct {
	value       float64
	fill, title string
}

// bars draws a series as an SVG bar chart, oldest day left.
func bars(l lang, v [chartDays]float64) template.HTML {
	out := make([]bar, len(v))
	for i, x := range v {
		out[i] = bar{value: x, fill: "#0b4f6c", title: fmt.Sprintf("%.0f", x)}
	}
	return svgBars(l, out, slices.Max(v[:]))
}

// svgBars draws bars of at most top as an SVG chart, oldest day left, its
// axis in the page's language. Only numbers and escaped text reach the
// markup, so it is safe as HTML.
func svgBars(l lang, bars []bar, top float64) template.HTML {
	const w, h, step, bw = 364, 110, 26, 22
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">`, w, h+18)
	for i, x := range bars {
		bh := 0.0
		if top > 0 {
			bh = x.value / top * h
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s</title></rect>`,
			i*step, h-bh, bw, bh, x.fill, html.EscapeString(x.title))
	}
	fmt.Fprintf(&b, `<text x="0" y="%d" font-size="11">%s</text><text x="%d" y="%d" font-size="11" text-anchor="end">%s</text></svg>`,
		h+14, html.EscapeString(l.T("%d days ago", len(bars)-1)), w, h+14, html.EscapeString(l.T("today · max %d", int(top))))
	return template.HTML(b.String())
}
