package portal

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/verify"
)

// Bounds of a bulk upload.
const (
	maxBulkRows  = 1000
	maxDateRange = 28
)

// issueForm is what the issue page needs: the allowed date range and
// whether a phone may be given.
type issueForm struct {
	Today, Oldest string
	SMS           bool
	Types         []string
	// Issued codes the provider issued in the last 24 hours, of Quota.
	Issued, Quota uint32
}

// form is what the issue forms show the signed-in worker, with how many
// codes its provider issued in the last 24 hours against its quota.
func (p *Portal) form(c *gin.Context) issueForm {
	provider := c.MustGet(ctxUser).(*fsmpb.User).GetProvider()
	now := p.cfg.Now().UTC()
	policy, _ := p.region.FSM().Policy()
	return issueForm{Today: now.Format("2006-01-02"), Oldest: now.AddDate(0, 0, -maxDateRange).Format("2006-01-02"),
		SMS: p.cfg.SMS, Types: []string{verify.TestConfirmed, verify.TestLikely, verify.TestNegative},
		Issued: p.region.FSM().IssuedLastDay(provider, now.Unix()), Quota: fsm.ProviderQuota(policy)}
}

// home is the issue form (for accounts that may issue).
func (p *Portal) home(c *gin.Context) {
	p.render(c, http.StatusOK, "home.html", page{Title: msg("Issue a verification code"), Data: p.form(c)})
}

// issued is the result page: the short code in large digits, its expiry
// for the countdown, and the uuid.
type issued struct {
	Code, UUID string
	Expires    int64
	Minutes    int
	// What the code was issued for, echoed so that the worker sees what
	// was chosen: the test type, the dates (empty: not given), and the
	// number the SMS went to, with how long its code works.
	TestType, TestDate, SymptomDate string
	SentTo                          string
	LongExpires                     int64
	LongHours                       int
}

// issue issues one code for the worker's provider, then redirects to the
// page that shows it (POST-redirect-GET): the code travels in the flash
// cookie, so a reload shows the same code and issues none.
func (p *Portal) issue(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	req := verify.IssueRequest{TestType: c.PostForm("testType"), TestDate: c.PostForm("testDate"),
		SymptomDate: c.PostForm("symptomDate"), Phone: c.PostForm("phone")}
	resp, verr := p.issuer.Issue(c.Request.Context(), u.GetProvider(), u.GetEmail(), req)
	if verr != nil {
		p.render(c, verr.Status, "home.html", page{Title: msg("Issue a verification code"), Error: verr.Message, Data: p.form(c)})
		return
	}
	p.audit(c, "issue code", resp.UUID)
	shown := issued{Code: resp.Code, UUID: resp.UUID, Expires: resp.ExpiresAtTimestamp, TestType: strings.ToLower(req.TestType),
		TestDate: req.TestDate, SymptomDate: req.SymptomDate, SentTo: resp.SentTo, LongExpires: resp.LongExpiresAtTimestamp}
	if err := p.setFlash(c, "issued", u.GetEmail(), shown, time.Until(time.Unix(resp.ExpiresAtTimestamp, 0))); err != nil {
		p.render(c, http.StatusInternalServerError, "message.html", page{Title: msg("Error"), Error: msg("The code was issued but cannot be shown; expire it under Recent codes.")})
		return
	}
	p.redirectAfterWrite(c, "/portal/issued")
}

// issuedPage shows the code the worker just issued, for as long as the
// short code lives.
func (p *Portal) issuedPage(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	var shown issued
	if err := p.readFlash(c, "issued", u.GetEmail(), &shown); err != nil {
		p.render(c, http.StatusNotFound, "message.html", page{Title: msg("No code to show"),
			Error: msg("A code is shown only after it is issued, until its short code expires, and it is not kept: Recent codes lists it.")})
		return
	}
	shown.Minutes = int(time.Until(time.Unix(shown.Expires, 0)).Round(time.Minute) / time.Minute)
	shown.LongHours = int(time.Until(time.Unix(shown.LongExpires, 0)).Round(time.Hour) / time.Hour)
	p.render(c, http.StatusOK, "issued.html", page{Title: msg("Verification code"), Data: shown})
}

// codeRow is a code as the list shows it.
type codeRow struct {
	UUID, TestType, Status, IssuedBy string
	Issued                           int64
	Mine, Expirable                  bool
}

func status(c *fsmpb.VerificationCode, now int64) string {
	switch {
	case c.GetClaimedUnix() != 0:
		return msg("used")
	case c.GetExpiredByUnix() != 0:
		return msg("expired (by hand)")
	case now >= c.GetLongExpiresUnix():
		return msg("expired")
	}
	return msg("unused")
}

// codes lists the provider's recent codes, the worker's own marked.
func (p *Portal) codes(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	now := p.cfg.Now().Unix()
	var rows []codeRow
	for _, code := range p.region.FSM().VerificationCodes(u.GetProvider(), 200) {
		st := status(code, now)
		rows = append(rows, codeRow{UUID: code.GetUuid(), TestType: code.GetTestType(), Status: st, IssuedBy: code.GetIssuedBy(),
			Issued: code.GetIssuedUnix(), Mine: code.GetIssuedBy() == u.GetEmail(), Expirable: st == "unused"})
	}
	p.render(c, http.StatusOK, "codes.html", page{Title: msg("Recent codes"), Notice: notices[c.Query("notice")], Data: rows})
}

// expire expires one of the provider's unused codes now.
func (p *Portal) expire(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	uuid := c.PostForm("uuid")
	if !p.confirmed(c, confirmation{Question: p.tr(c, "Expire the code %s? Its patient can no longer use it, and it cannot be undone.", uuid),
		Action: "/portal/codes/expire", Button: msg("Expire the code"), Back: "/portal/codes", Fields: []field{{"uuid", uuid}}}) {
		return
	}
	_, err := command.ExpireVerificationCode(c.Request.Context(), p.region, uuid, u.GetProvider())
	var refused *command.Error
	if errors.As(err, &refused) {
		p.render(c, http.StatusNotFound, "message.html", page{Title: msg("Not found"), Error: msg("No such code of your provider.")})
		return
	}
	if err != nil {
		p.render(c, http.StatusServiceUnavailable, "message.html", page{Title: msg("Try again"), Error: msg("The region is not ready; try again in a moment.")})
		return
	}
	p.audit(c, "expire code", uuid)
	p.redirectAfterWrite(c, "/portal/codes?notice=expired")
}
