package portal

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/stats"
)

// statsView is the statistics page: one series (the region's or a
// provider's), its charts and its days, newest first, as stats.Show holds
// them back.
type statsView struct {
	// Provider is the series shown ("" for the whole region); Providers
	// are an operator's other choices.
	Provider  string
	Providers []string
	// Threshold is the smallest count shown; Below, the largest held.
	Threshold, Below int
	Charts           []chart
	Days             []stats.Shown
}

// statsRole admits operators (the whole region, any provider) and a
// provider's accounts that follow its codes (role codes: its own figures).
func (p *Portal) statsRole(c *gin.Context) {
	if u := c.MustGet(ctxUser).(*fsmpb.User); !has(u, "operator") && !(has(u, "codes") && u.GetProvider() != "") {
		p.render(c, http.StatusForbidden, "message.html", page{Title: msg("Not allowed"), Error: msg("Your account may not do this.")})
		c.Abort()
	}
}

// statsSeries is the series the account asked for and may see: a
// provider's account its own, an operator the region's or a provider's
// (?provider=); false for a provider that does not exist.
func (p *Portal) statsSeries(c *gin.Context) (stats.Series, []string, bool) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	want := c.Query("provider")
	if u.GetProvider() != "" {
		want = u.GetProvider()
	}
	rep := stats.Compute(p.region.FSM(), p.cfg.Now(), stats.Days)
	var names []string
	if has(u, "operator") {
		for _, pr := range p.region.FSM().Providers() {
			names = append(names, pr.GetId())
		}
	}
	if want == "" {
		return rep.Region, names, true
	}
	if _, ok := p.region.FSM().Provider(want); !ok {
		return stats.Series{}, names, false
	}
	return rep.Of(want), names, true
}

func (p *Portal) statsPage(c *gin.Context) {
	s, names, ok := p.statsSeries(c)
	if !ok {
		p.render(c, http.StatusNotFound, "message.html", page{Title: msg("Not found"), Error: msg("There is no provider of that name.")})
		return
	}
	t := p.cfg.StatsThreshold
	v := statsView{Provider: s.Provider, Providers: names, Threshold: t, Below: t - 1}
	for _, d := range s.Days {
		v.Days = append(v.Days, stats.Show(d, t))
	}
	slices.Reverse(v.Days)
	l := p.language(c)
	v.Charts = []chart{
		{msg("Codes issued per day"), heldBars(l, s.Days, t, func(d stats.Day) int { return d.Issued })},
		{msg("Codes used per day"), heldBars(l, s.Days, t, func(d stats.Day) int { return d.Used })},
		{msg("Codes expired unused per day"), heldBars(l, s.Days, t, func(d stats.Day) int { return d.Expired })},
		{msg("Uploads per day"), heldBars(l, s.Days, t, func(d stats.Day) int { return d.Uploads })},
	}
	title := p.tr(c, "Statistics of the region")
	if s.Provider != "" {
		title = p.tr(c, "Statistics of %s", s.Provider)
	}
	p.render(c, http.StatusOK, "stats.html", page{Title: title, Data: v})
}

// statsCSV downloads the page's figures as a CSV file, held back alike.
func (p *Portal) statsCSV(c *gin.Context) {
	s, _, ok := p.statsSeries(c)
	if !ok {
		p.render(c, http.StatusNotFound, "message.html", page{Title: msg("Not found"), Error: msg("There is no provider of that name.")})
		return
	}
	name := "region"
	if s.Provider != "" {
		name = s.Provider
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "statistics-"+name+"-"+p.cfg.Now().UTC().Format("2006-01-02")+".csv"))
	if err := stats.WriteCSV(c.Writer, []stats.Series{s}, p.cfg.StatsThreshold); err != nil {
		p.cfg.Logger.Error("statistics CSV", "err", err)
	}
}

// heldBars draws a day's count as a bar, oldest day left; a count held
// back is a pale bar as high as the threshold, titled "<threshold", so
// that the chart says no more than the table.
func heldBars(l lang, days []stats.Day, threshold int, get func(stats.Day) int) template.HTML {
	top := threshold
	out := make([]bar, len(days))
	for i, d := range days {
		n := get(d)
		top = max(top, n)
		out[i] = bar{value: float64(n), fill: "#0b4f6c", title: d.Date.Format("2006-01-02") + ": " + fmt.Sprint(n)}
		if !stats.Visible(n, threshold) {
			out[i] = bar{value: float64(threshold), fill: "#b8cbd6", title: d.Date.Format("2006-01-02") + ": <" + fmt.Sprint(threshold)}
		}
	}
	return svgBars(l, out, float64(top))
}
