package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// maxDeleteDays bounds the days between the end and the deletion, as the
// state machine does.
const maxDeleteDays = 366

// serviceView is the end-of-service page: the timeline, what the deletion
// deleted, and the form's values.
type serviceView struct {
	fsm.ServiceTimeline
	Service    *fsmpb.Service
	Date       string
	DeleteDays int
}

// servicePage shows the region's end of service (operators).
func (p *Portal) servicePage(c *gin.Context) {
	p.showService(c, http.StatusOK, "", "", 7)
}

func (p *Portal) showService(c *gin.Context, status int, problem, date string, deleteDays int) {
	svc := p.region.FSM().Service()
	policy, _ := p.region.FSM().Policy()
	v := serviceView{ServiceTimeline: fsm.TimelineOf(svc, policy.GetRetentionSeconds(), p.cfg.Now().Unix()), Service: svc,
		Date: date, DeleteDays: deleteDays}
	if v.WindDownUnix != 0 && date == "" {
		v.Date, v.DeleteDays = time.Unix(v.WindDownUnix, 0).UTC().Format(time.DateOnly), int(svc.GetDeleteAfterSeconds()/86_400)
	}
	p.render(c, status, "service.html", page{Title: msg("End of service"), Error: problem, Notice: notices[c.Query("notice")], Data: v})
}

// saveService schedules or moves the end (uploads stop at 00:00 UTC of
// the date given; the date in force keeps its exact time, so a form sent
// to change the deletion alone moves nothing) or cancels it, each after
// a confirmation.
func (p *Portal) saveService(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	date, days := strings.TrimSpace(c.PostForm("date")), strings.TrimSpace(c.PostForm("delete_days"))
	req := &fsmpb.SetService{Cancel: c.PostForm("action") == "cancel", Author: u.GetEmail()}
	question, button, audit := p.tr(c, "Cancel the end of service? Uploads and codes are taken again, and apps are told so."), msg("Cancel the end"), "cancelled"
	if !req.GetCancel() {
		day, err := time.Parse(time.DateOnly, date)
		n, nerr := strconv.Atoi(days)
		switch {
		case err != nil || day.Year() < 2020:
			p.showService(c, http.StatusBadRequest, msg("Give the date uploads stop, as a date like 2027-03-01."), date, n)
			return
		case nerr != nil || n < 0 || n > maxDeleteDays:
			p.showService(c, http.StatusBadRequest, msg("Give the days between the end and the deletion, from 0 to 366."), date, 7)
			return
		}
		req.WindDownUnix, req.DeleteAfterSeconds = day.Unix(), int64(n)*86_400
		if w := p.region.FSM().Service().GetWindDownUnix(); w != 0 && time.Unix(w, 0).UTC().Format(time.DateOnly) == date {
			req.WindDownUnix = w
		}
		question = p.tr(c, "From %s 00:00 UTC no upload, code or certificate is taken; apps are told now. Files are served until their keys age out, and %d days after that submissions, codes, API keys and the health care workers' accounts are deleted. Go on?", date, n)
		button, audit = msg("End the service"), "uploads stop "+date
	}
	if !p.confirmed(c, confirmation{Question: question, Action: "/portal/service", Button: button, Back: "/portal/service",
		Fields: []field{{"action", c.PostForm("action")}, {"date", date}, {"delete_days", days}}}) {
		return
	}
	_, err := command.SetService(c.Request.Context(), p.region, req)
	var refused *command.Error
	n, _ := strconv.Atoi(days)
	switch {
	case errors.As(err, &refused) && refused.Code == command.CodeServiceOver:
		p.showService(c, http.StatusConflict, msg("The service has ended: its end can no longer be moved or cancelled."), date, n)
		return
	case errors.As(err, &refused) && req.GetCancel():
		p.showService(c, http.StatusBadRequest, msg("No end of service is scheduled."), date, n)
		return
	case errors.As(err, &refused):
		p.showService(c, http.StatusBadRequest, msg("The region did not take this date or number of days."), date, n)
		return
	case err != nil:
		p.showService(c, http.StatusServiceUnavailable, msg("The region could not save it now; try again in a moment."), date, n)
		return
	}
	p.audit(c, "end of service", audit)
	p.redirectAfterWrite(c, "/portal/service?notice=service-saved")
}
