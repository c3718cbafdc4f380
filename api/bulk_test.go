package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/account"
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// postFile sends a file as the bulk form does, with the page's CSRF token,
// and returns the status and where it redirects.
func (b *browserish) postFile(path, csrf, name string, data []byte) (int, string) {
	b.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("csrf", csrf)
	fw, _ := w.CreateFormFile("file", name)
	fw.Write(data)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

var codeCell = regexp.MustCompile(`class="code-cell" data-label="Code">(\d{8})<`)

// A bulk run answers with its page (POST-redirect-GET): every line's
// code, and the refused line with its reason. A reload issues nothing and
// shows the same codes; the same file sent again (an interrupted run)
// issues nothing twice and shows every code again, as does the run's CSV;
// a code used by an app is no longer shown; the state keeps the codes
// only sealed; another provider's worker does not see the run.
func TestPortalBulkRunShownAgain(t *testing.T) {
	ts := verifyServer(t)
	addWorker(t, ts, "w@lab.example", nil, "bulk")
	b := portalClient(t, ts)
	b.signIn("w@lab.example", "correct horse battery staple")
	_, page, _ := b.get("/bulk")
	file := []byte("testType;testDate\nconfirmed;" + time.Now().UTC().Format(time.DateOnly) + "\nlikely;\nlikely;\nflu;\n")
	status, where := b.postFile("/bulk", formToken(t, page), "codes.csv", file)
	if status != http.StatusSeeOther || !strings.HasPrefix(where, "/portal/bulk/run?") {
		t.Fatalf("bulk issue: %d, to %q", status, where)
	}
	runPath := strings.TrimPrefix(where, "/portal")
	codesOn := func(page string) []string {
		var out []string
		for _, m := range codeCell.FindAllStringSubmatch(page, -1) {
			out = append(out, m[1])
		}
		return out
	}
	_, first, _ := b.get(runPath)
	codes := codesOn(first)
	if len(codes) != 3 || !strings.Contains(first, "The test type is not one of confirmed, likely or negative.") || !strings.Contains(first, "3 codes issued now") {
		t.Fatalf("the run's page shows %d codes (want 3) and the refused line:\n%s", len(codes), first)
	}
	_, again, _ := b.get(runPath)
	status, where = b.postFile("/bulk", formToken(t, first), "codes.csv", file)
	_, resumed, _ := b.get(strings.TrimPrefix(where, "/portal"))
	if got := codesOn(again); strings.Join(got, ",") != strings.Join(codes, ",") {
		t.Fatalf("a reload shows %v, first %v", got, codes)
	}
	if got := codesOn(resumed); status != http.StatusSeeOther || strings.Join(got, ",") != strings.Join(codes, ",") || !strings.Contains(resumed, "0 codes issued now") {
		t.Fatalf("the same file again: %d, shows %v, first %v", status, got, codes)
	}
	if n := len(ts.node.FSM().VerificationCodes("lab", 100)); n != 3 {
		t.Fatalf("%d codes after a run, a reload and the same file again, want 3", n)
	}
	for _, c := range ts.node.FSM().VerificationCodes("lab", 100) {
		for _, code := range codes {
			if bytes.Contains(c.GetSealedCode(), []byte(code)) {
				t.Fatal("the state holds a bulk code in clear")
			}
		}
	}
	if w := ts.api("/api/verify", deviceKey, map[string]any{"code": codes[1]}); w.Code != http.StatusOK {
		t.Fatalf("verify a bulk code: %d %s", w.Code, w.Body)
	}
	_, body, h := b.get("/bulk/run.csv?" + strings.SplitN(runPath, "?", 2)[1])
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || len(rows) != 4 {
		t.Fatalf("the run's CSV: %d rows (%v)", len(rows), err)
	}
	if rows[1][3] != codes[0] || rows[2][3] != "" || rows[2][2] != "used" || rows[3][3] != codes[2] {
		t.Errorf("the run's CSV after line 3's code was used: %v", rows[1:])
	}
	if _, err := command.PutUser(context.Background(), ts.node, &fsmpb.User{Email: "x@clinic.example", Name: "X", Provider: "clinic",
		Roles: []string{"bulk"}, PasswordHash: account.HashPassword("correct horse battery staple")}); err != nil {
		t.Fatal(err)
	}
	other := portalClient(t, ts)
	other.signIn("x@clinic.example", "correct horse battery staple")
	if status, page, _ := other.get(runPath); status != http.StatusNotFound || len(codesOn(page)) != 0 {
		t.Errorf("another provider's worker: %d", status)
	}
}
