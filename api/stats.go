package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/stats"
)

// statsRoutes serve the stats API to holders of a stats key: the region's
// figures (or, for a provider's key, the provider's) at the GAEN reference
// verification server's /api/stats/realm.json and realm.csv, and each
// provider's (or the key's provider's alone) at /api/stats/providers.json
// and providers.csv. Counts are held back as on the portal (stats.Visible).
func (s *Server) statsRoutes(r gin.IRoutes, limit gin.HandlerFunc) {
	key := []gin.HandlerFunc{limit, s.admittedVerify, s.requireAPIKey(fsm.APIKeyStats)}
	r.GET("/api/stats/realm.json", append(key, s.statsJSON(false))...)
	r.GET("/api/stats/realm.csv", append(key, s.statsCSV(false))...)
	r.GET("/api/stats/providers.json", append(key, s.statsJSON(true))...)
	r.GET("/api/stats/providers.csv", append(key, s.statsCSV(true))...)
}

// statsSeries are the series a stats key may read: with perProvider each
// provider's, else the region's; a provider's key sees its provider's only.
func (s *Server) statsSeries(c *gin.Context, perProvider bool) []stats.Series {
	rep := stats.Compute(s.node.FSM(), s.cfg.Now(), stats.Days)
	own := callerKey(c).GetProvider()
	switch {
	case own == "" && perProvider:
		return rep.Providers
	case own == "":
		return []stats.Series{rep.Region}
	}
	return []stats.Series{rep.Of(own)}
}

func (s *Server) statsJSON(perProvider bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		series, region := s.statsSeries(c, perProvider), s.node.Config().Region
		if !perProvider {
			c.JSON(http.StatusOK, stats.NewDocument(region, series[0], s.statsThreshold()))
			return
		}
		docs := make([]stats.Document, 0, len(series))
		for _, one := range series {
			docs = append(docs, stats.NewDocument(region, one, s.statsThreshold()))
		}
		c.JSON(http.StatusOK, gin.H{"region": region, "providers": docs})
	}
}

func (s *Server) statsCSV(perProvider bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		name := "realm"
		if perProvider {
			name = "providers"
		}
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+"-"+s.cfg.Now().UTC().Format("2006-01-02")+".csv"))
		if err := stats.WriteCSV(c.Writer, s.statsSeries(c, perProvider), s.statsThreshold()); err != nil {
			s.cfg.Logger.Error("stats CSV", "err", err)
		}
	}
}

// statsThreshold is the smallest count shown as it is.
func (s *Server) statsThreshold() int {
	if t := s.cfg.Verification.StatsThreshold; t > 0 {
		return t
	}
	return stats.DefaultThreshold
}
