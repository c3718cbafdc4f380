package portal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/appconfig"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// appConfigView is the configuration page: the document being edited,
// the version in force, and what the edit changes in it.
type appConfigView struct {
	Version  uint32
	Document string
	Changes  []string
	Problem  string
}

// appConfigPage shows the app configuration in force as an editable
// document (operators).
func (p *Portal) appConfigPage(c *gin.Context) {
	v := appConfigView{}
	if cur, ok := p.region.FSM().AppConfig(0); ok {
		doc, _ := appconfig.JSON(cur)
		v.Version, v.Document = cur.GetVersion(), string(doc)
	}
	p.render(c, http.StatusOK, "appconfig.html", page{Title: msg("App configuration"), Notice: notices[c.Query("notice")], Data: v})
}

// saveAppConfig previews what a document changes in the version in force
// or, asked to save, keeps it as the next version. A document the checks
// refuse is shown again with what is wrong.
func (p *Portal) saveAppConfig(c *gin.Context) {
	v := appConfigView{Document: c.PostForm("document")}
	cur, hasCur := p.region.FSM().AppConfig(0)
	if hasCur {
		v.Version = cur.GetVersion()
	}
	cfg, err := appconfig.Parse([]byte(v.Document))
	if err == nil {
		err = fsm.ValidateAppConfig(cfg)
	}
	if err != nil {
		v.Problem = err.Error() // names the field, in the document's own words
		p.render(c, http.StatusBadRequest, "appconfig.html", page{Title: msg("App configuration"), Error: msg("The configuration was not saved: a field is wrong."), Data: v})
		return
	}
	if hasCur {
		v.Changes = changes(cur, cfg)
	}
	if c.PostForm("action") != "save" {
		p.render(c, http.StatusOK, "appconfig.html", page{Title: msg("App configuration"), Data: v})
		return
	}
	cfg.Author, cfg.Signers = c.MustGet(ctxUser).(*fsmpb.User).GetEmail(), p.cfg.ExportSigners
	kept, err := command.SetAppConfig(c.Request.Context(), p.region, cfg)
	if err != nil {
		v.Problem = err.Error()
		p.render(c, http.StatusBadRequest, "appconfig.html", page{Title: msg("App configuration"), Error: msg("The configuration was not saved: a field is wrong."), Data: v})
		return
	}
	p.audit(c, "app configuration", "version "+strconv.FormatUint(uint64(kept.GetVersion()), 10))
	p.redirectAfterWrite(c, "/portal/appconfig?notice=appconfig-saved")
}

// changes lists what differs between two configurations' documents, one
// line a field ("gaen_v1.minimumRiskScore: 11 → 20"), by field name.
func changes(before, after *fsmpb.AppConfig) []string {
	flat := func(c *fsmpb.AppConfig) map[string]string {
		d := appconfig.Of(c)
		d.Version, d.Time = 0, ""
		data, _ := json.Marshal(d)
		var tree any
		_ = json.Unmarshal(data, &tree)
		out := map[string]string{}
		flatten("", tree, out)
		return out
	}
	a, b := flat(before), flat(after)
	var paths []string
	for k := range a {
		paths = append(paths, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			paths = append(paths, k)
		}
	}
	slices.Sort(paths)
	var out []string
	for _, k := range paths {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: %s → %s", k, orNone(a[k]), orNone(b[k])))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// flatten writes a JSON tree's leaves (lists whole) under dotted paths.
func flatten(path string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			flatten(strings.TrimPrefix(path+"."+k, "."), x, out)
		}
		return
	}
	data, _ := json.Marshal(v)
	out[path] = string(data)
}
