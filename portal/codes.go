package portal

import (
	"errors"
	"net/http"
	"slices"
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
	// Sent is the form as the worker sent it, kept after a refusal, and
	// Problems what is wrong with each field, by the field's name.
	Sent     verify.IssueRequest
	Problems map[string]string
}

// form is what the issue forms show the signed-in worker, with how many
// codes its provider issued in the last 24 hours against its quota.
func (p *Portal) form(c *gin.Context) issueForm {
	provider := c.MustGet(ctxUser).(*fsmpb.User).GetProvider()
	now := p.cfg.Now().UTC()
	policy, _ := p.region.FSM().Policy()
	today, oldest := p.dateRange()
	return issueForm{Today: today, Oldest: oldest, SMS: p.cfg.SMS, Types: issueTypes,
		Issued: p.region.FSM().IssuedLastDay(provider, now.Unix()), Quota: fsm.ProviderQuota(policy)}
}

// issueTypes are the test types a worker issues codes for.
var issueTypes = []string{verify.TestConfirmed, verify.TestLikely, verify.TestNegative}

// dateRange is the days a code's dates may name, today (UTC) and the
// oldest.
func (p *Portal) dateRange() (today, oldest string) {
	now := p.cfg.Now().UTC()
	return now.Format(time.DateOnly), now.AddDate(0, 0, -maxDateRange).Format(time.DateOnly)
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
	if problems := p.fieldProblems(c, req); len(problems) > 0 {
		p.refuseIssue(c, http.StatusBadRequest, req, problems, msg("The code was not issued: correct the fields marked below."))
		return
	}
	resp, verr := p.issuer.Issue(c.Request.Context(), u.GetProvider(), u.GetEmail(), req)
	switch {
	case verr != nil && verr.Code == verify.CodePhoneInvalid:
		p.refuseIssue(c, verr.Status, req, map[string]string{"phone": p.plainRefusal(c, verr)},
			msg("The code was not issued: correct the fields marked below."))
		return
	case verr != nil:
		p.refuseIssue(c, verr.Status, req, nil, p.plainRefusal(c, verr))
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

// fieldProblems checks the issue form field by field, by the rules the
// issuer applies, and says in plain words what is wrong next to each field.
func (p *Portal) fieldProblems(c *gin.Context, req verify.IssueRequest) map[string]string {
	problems := map[string]string{}
	today, oldest := p.dateRange()
	if !slices.Contains(issueTypes, strings.ToLower(req.TestType)) {
		problems["testType"] = p.tr(c, "Choose the type of test.")
	}
	now := p.cfg.Now()
	if _, verr := verify.ParseDay(req.TestDate, 0, now); verr != nil {
		problems["testDate"] = p.tr(c, "Pick a day from %s to %s, or leave it empty: codes are for tests of the last 28 days.", oldest, today)
	}
	if _, verr := verify.ParseDay(req.SymptomDate, 0, now); verr != nil {
		problems["symptomDate"] = p.tr(c, "Pick a day from %s to %s, or leave it empty: codes are for symptoms of the last 28 days.", oldest, today)
	}
	return problems
}

// plainRefusal says why the issuer refused a code in the worker's words
// and language; a refusal it does not know is said as the issuer said it.
func (p *Portal) plainRefusal(c *gin.Context, verr *verify.Error) string {
	switch verr.Code {
	case verify.CodeInvalidTestType:
		return p.tr(c, "The test type is not one of confirmed, likely or negative.")
	case verify.CodeInvalidDate:
		return p.tr(c, "A date is not a day of the last 28 days, written YYYY-MM-DD.")
	case verify.CodePhoneInvalid:
		return p.tr(c, "Give a mobile number that can get a text message, with its country code (such as +31 6 12345678) if it is not of this country.")
	case verify.CodeQuotaExceeded:
		return p.tr(c, "Your provider has issued as many codes as it may in 24 hours; ask the health authority to raise its quota.")
	case verify.CodeSMSQuota, verify.CodeNumberQuota:
		return p.tr(c, "No more text messages may be sent now (to this number, or by the region); the code was not sent. Try again later or read a code out.")
	case verify.CodeUnavailable:
		return p.tr(c, "The region is not ready; try again in a moment.")
	case verify.CodeServiceEnded:
		return p.tr(c, "This service has ended: no codes are issued any more.")
	}
	return verr.Message
}

// refuseIssue shows the issue form again as it was sent, with what is
// wrong next to each field and a line that says why above it.
func (p *Portal) refuseIssue(c *gin.Context, status int, req verify.IssueRequest, problems map[string]string, why string) {
	form := p.form(c)
	form.Sent, form.Problems = req, problems
	p.render(c, status, "home.html", page{Title: msg("Issue a verification code"), Error: why, Data: form})
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
