package portal

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/verify"
)

// bulkData is the bulk page: the form and, on a run's page, its lines.
type bulkData struct {
	issueForm
	// Run names the run shown (empty: the form alone); CSV is its download.
	Run, CSV string
	Rows     []bulkRow
}

func (p *Portal) bulkPage(c *gin.Context) {
	p.render(c, http.StatusOK, "bulk.html", page{Title: msg("Issue codes in bulk"), Data: bulkData{issueForm: p.form(c)}})
}

// bulkRow is one line of a bulk run and what became of it: a code issued
// (shown while it is unused and lives), sent by SMS, used or expired, or
// the reason the line was refused.
type bulkRow struct {
	Line             int
	UUID, Code, Note string
	Expires          int64
	// OK: the line has a code; SMS: the code went by SMS.
	OK, SMS bool
}

// refusedLines travel to the run's page in the flash cookie: the region
// keeps no record of a line it refused.
type refusedLines struct {
	Run   string
	Lines []bulkRow
	// More counts refusals beyond those listed (the cookie stays small).
	More int
}

// maxRefusedShown bounds the refusals the run's page lists, so that the
// flash cookie that carries them stays well under the 4 KB browsers keep.
const maxRefusedShown = 10

// bulk issues a code per CSV line (header: testType, testDate,
// symptomDate, phone, uuid; only testType required), each in the run of
// this provider and file, then shows the run (POST-redirect-GET). A line
// without a uuid gets one derived from its content (lineIDs), so that
// sending the same file again after an interruption, or a corrected one,
// issues only what is missing and the run's page shows every line's code
// again, while two patients on two lines of the same text never share one.
// In a region before command.BulkRuns the codes are shown once, at once.
func (p *Portal) bulk(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	f, _, err := c.Request.FormFile("file")
	var data []byte
	if err == nil {
		data, err = io.ReadAll(f)
		f.Close()
	}
	if err != nil {
		p.render(c, http.StatusBadRequest, "bulk.html", page{Title: msg("Issue codes in bulk"), Error: msg("Choose a CSV file (at most 2 MB)."), Data: bulkData{issueForm: p.form(c)}})
		return
	}
	rows, err := readBulk(bytes.NewReader(data))
	if err != nil {
		p.render(c, http.StatusBadRequest, "bulk.html", page{Title: msg("Issue codes in bulk"), Error: err.Error(), Data: bulkData{issueForm: p.form(c)}})
		return
	}
	run := bulkRun(u.GetProvider(), data)
	runs := p.region.RegionVersion() >= command.BulkRuns // earlier versions keep no run: codes are shown once, now
	refused, shown := refusedLines{Run: run}, []bulkRow(nil)
	note := func(row bulkRow) {
		if len(refused.Lines) < maxRefusedShown {
			refused.Lines = append(refused.Lines, row)
		} else {
			refused.More++
		}
	}
	issuedCount := 0
	ids := lineIDs(u.GetProvider(), rows)
	for i, r := range rows {
		if r.req.UUID == "" {
			r.req.UUID = ids[i]
		}
		if runs {
			r.req.Run, r.req.Line = run, r.line
		}
		resp, verr := p.issuer.Issue(c.Request.Context(), u.GetProvider(), u.GetEmail(), r.req)
		switch {
		case verr == nil:
			issuedCount++
			shown = append(shown, bulkRow{Line: r.line, UUID: resp.UUID, Code: resp.Code, Expires: resp.ExpiresAtTimestamp, OK: true,
				Note: msg("issued"), SMS: resp.SentTo != ""})
		case verr.Code == verify.CodeUUIDExists:
			if row, ok := p.issuedBefore(u, r, run); !ok {
				note(row)
			}
		default:
			note(bulkRow{Line: r.line, UUID: r.req.UUID, Note: p.plainRefusal(c, verr)})
		}
	}
	p.audit(c, "bulk issue", fmt.Sprintf("%d of %d codes (run %s)", issuedCount, len(rows), run))
	if !runs {
		rows := append(shown, refused.Lines...)
		slices.SortFunc(rows, func(a, b bulkRow) int { return cmp.Compare(a.Line, b.Line) })
		p.render(c, http.StatusOK, "bulk.html", page{Title: msg("Bulk run"), Notice: p.tr(c, "%s codes issued now; lines issued before show their codes again.", strconv.Itoa(issuedCount)),
			Data: bulkData{issueForm: p.form(c), Rows: rows}})
		return
	}
	if err := p.setFlash(c, "bulk", u.GetEmail(), refused, time.Hour); err != nil {
		p.cfg.Logger.Warn("bulk issue: the refused lines cannot be shown", "err", err)
	}
	p.redirectAfterWrite(c, "/portal/bulk/run?"+url.Values{"id": {run}, "issued": {strconv.Itoa(issuedCount)}}.Encode())
}

// issuedBefore tells a line whose id a code holds already: the run's page
// shows it when that code is this run's line; else the line gets a row
// that says where its code is (another file of the provider), or that
// its uuid belongs to a code not of this provider, and nothing is issued.
func (p *Portal) issuedBefore(u *fsmpb.User, r csvRow, run string) (bulkRow, bool) {
	code, ok := p.region.FSM().VerificationCode(r.req.UUID)
	switch {
	case ok && code.GetProvider() == u.GetProvider() && code.GetBulkRun() == run:
		return bulkRow{}, true
	case ok && code.GetProvider() == u.GetProvider():
		return bulkRow{Line: r.line, UUID: r.req.UUID, OK: true, Note: msg("issued before, from another file: see that file's results or Recent codes")}, false
	}
	return bulkRow{Line: r.line, UUID: r.req.UUID, Note: msg("the uuid of this line is another code's; give the line a uuid of its own")}, false
}

// bulkRun names the run of a file: the provider's, of this file's bytes.
func bulkRun(provider string, file []byte) string {
	digest := sha256.Sum256(file)
	sum := sha256.Sum256([]byte(provider + "\x00" + hex.EncodeToString(digest[:])))
	return "run-" + hex.EncodeToString(sum[:12])
}

// lineIDs are the idempotency ids of a file's lines without a uuid: the
// provider's, of the line's content, and of how many lines of the same
// content came before it. Sending the file again, or a corrected one,
// issues only the lines not issued yet (a corrected line is new, the
// others keep their codes), while two patients on two lines of the same
// text never share one.
func lineIDs(provider string, rows []csvRow) []string {
	seen := map[string]int{}
	ids := make([]string, len(rows))
	for i, r := range rows {
		content := strings.Join([]string{strings.ToLower(r.req.TestType), r.req.TestDate, r.req.SymptomDate, r.req.Phone}, "\x00")
		seen[content]++
		sum := sha256.Sum256([]byte(provider + "\x00" + content + "\x00" + strconv.Itoa(seen[content])))
		ids[i] = "bulk-" + hex.EncodeToString(sum[:12])
	}
	return ids
}

// runRows are the lines of a run of the worker's provider, by line: its
// codes as the state holds them (the code itself while it is unused and
// lives), and the refusals the flash cookie brought.
func (p *Portal) runRows(c *gin.Context, run string, refused refusedLines) []bulkRow {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	now := p.cfg.Now().Unix()
	var rows []bulkRow
	for _, code := range p.region.FSM().BulkRun(u.GetProvider(), run) {
		row := bulkRow{Line: int(code.GetBulkLine()), UUID: code.GetUuid(), Expires: code.GetExpiresUnix(), OK: true, Note: status(code, now)}
		switch shown, ok := verify.OpenBulkCode(p.cfg.CodeKeys, code); {
		case len(code.GetSmsTo()) > 0:
			row.SMS = true
		case row.Note == "unused" && now >= code.GetExpiresUnix():
			row.Note = msg("expired")
		case row.Note == "unused" && ok:
			row.Code, row.Note = shown, msg("issued")
		}
		rows = append(rows, row)
	}
	if refused.Run == run {
		rows = append(rows, refused.Lines...)
	}
	slices.SortFunc(rows, func(a, b bulkRow) int { return cmp.Compare(a.Line, b.Line) })
	return rows
}

// runPage shows a bulk run: every line's result, the codes still to hand
// out, a CSV download and a printable list. A reload issues nothing.
func (p *Portal) runPage(c *gin.Context) {
	u := c.MustGet(ctxUser).(*fsmpb.User)
	run := c.Query("id")
	var refused refusedLines
	p.readFlash(c, "bulk", u.GetEmail(), &refused)
	rows := p.runRows(c, run, refused)
	if len(rows) == 0 {
		p.render(c, http.StatusNotFound, "bulk.html", page{Title: msg("Issue codes in bulk"), Error: msg("There is no bulk run of that id for your provider (its codes may have been removed after the retention period)."), Data: bulkData{issueForm: p.form(c)}})
		return
	}
	notice := ""
	if n := c.Query("issued"); n != "" {
		notice = p.tr(c, "%s codes issued now; lines issued before show their codes again.", n)
	}
	if refused.More > 0 {
		notice += " " + p.tr(c, "%d more lines were refused than are listed; correct the file and send it again.", refused.More)
	}
	p.render(c, http.StatusOK, "bulk.html", page{Title: msg("Bulk run"), Notice: strings.TrimSpace(notice),
		Data: bulkData{issueForm: p.form(c), Run: run, CSV: "/portal/bulk/run.csv?" + url.Values{"id": {run}}.Encode(), Rows: rows}})
}

// runCSV downloads a run's lines as CSV: line, code id, result, code (while
// it is unused and lives) and when it expires (UTC).
func (p *Portal) runCSV(c *gin.Context) {
	run := c.Query("id")
	rows := p.runRows(c, run, refusedLines{})
	if len(rows) == 0 {
		p.render(c, http.StatusNotFound, "message.html", page{Title: msg("Not found"), Error: msg("There is no bulk run of that id for your provider.")})
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", run+".csv"))
	w := csv.NewWriter(c.Writer)
	w.Write([]string{"line", "uuid", "result", "code", "expires_utc"})
	for _, r := range rows {
		expires := ""
		if r.Code != "" {
			expires = time.Unix(r.Expires, 0).UTC().Format("2006-01-02 15:04")
		}
		note := r.Note
		if r.SMS {
			note = "sent by SMS; " + note
		}
		w.Write([]string{strconv.Itoa(r.Line), r.UUID, note, r.Code, expires})
	}
	w.Flush()
}

type csvRow struct {
	line int
	req  verify.IssueRequest
}

// readBulk reads the CSV: a header naming the columns, then at most
// maxBulkRows lines. It reads what spreadsheets save: a byte-order mark,
// commas, semicolons (Excel where the decimal mark is a comma) or tabs,
// header names in any case and spacing ("TestType", "test date"), and
// empty lines (skipped).
func readBulk(r io.Reader) ([]csvRow, error) {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	first, _ := br.Peek(4096)
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.Comma = delimiter(first)
	header, err := cr.Read()
	if err != nil {
		return nil, errors.New("the file is not CSV with a header line")
	}
	col := map[string]int{}
	for i, h := range header {
		col[columnKey(h)] = i
	}
	if _, ok := col["testtype"]; !ok {
		return nil, fmt.Errorf("the first line names the columns, and one must be testType (found: %s); testDate, symptomDate, phone and uuid may follow",
			strings.Join(header, ", "))
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []csvRow
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, errors.New("line " + strconv.Itoa(line) + ": " + err.Error())
		}
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue // an empty line, or a spreadsheet's ";;;;"
		}
		if len(rows) == maxBulkRows {
			return nil, errors.New("at most 1000 lines per file")
		}
		rows = append(rows, csvRow{line: line, req: verify.IssueRequest{
			TestType: get(rec, "testtype"), TestDate: get(rec, "testdate"), SymptomDate: get(rec, "symptomdate"),
			Phone: get(rec, "phone"), UUID: get(rec, "uuid")}})
	}
}

// delimiter is the field separator of a CSV's first line: the one of
// comma, semicolon and tab it holds most of (a comma when none).
func delimiter(start []byte) rune {
	line, _, _ := bytes.Cut(start, []byte("\n"))
	best, most := ',', 0
	for _, d := range []rune{',', ';', '\t'} {
		if n := bytes.Count(line, []byte(string(d))); n > most {
			best, most = d, n
		}
	}
	return best
}

// columnKey is a header name as columns are looked up: lower case,
// without spaces, underscores or hyphens.
func columnKey(h string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, strings.TrimSpace(h))
}
