package clustertest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/covid-backend/covid-backend/api"
)

// moveClock restarts every node of a 3-node region with its clock at
// when (--test-clock-offset), all alike, as members agree on the time.
func (c *cluster) moveClock(when time.Time) {
	c.t.Helper()
	ids := c.ids(3)
	for _, id := range ids {
		c.stop(id)
	}
	offset := time.Until(when).Round(time.Second).String()
	for i := range ids {
		c.start(i+1, "--test-clock-offset", offset)
	}
	for _, id := range ids {
		c.waitReady(id)
	}
	c.waitLeader(20*time.Second, ids...)
	c.t.Logf("the region's clock is at %s", when.UTC().Format(time.RFC3339))
}

// serviceView reads the end of service from a node's admin API.
func (c *cluster) serviceView(id string) api.ServiceView {
	c.t.Helper()
	status, b, err := c.tryAdminGet(id, "/v1/admin/service")
	var v api.ServiceView
	if err != nil || status != http.StatusOK || json.Unmarshal(b, &v) != nil {
		c.t.Fatalf("service on %s: %d %s %v", id, status, b, err)
	}
	return v
}

// sameOnEveryNode waits until path answers 200 on every node of the
// region with one body that ok accepts, and returns it.
func (c *cluster) sameOnEveryNode(what, path string, ok func(body string) bool) string {
	c.t.Helper()
	var first string
	c.waitFor(what+" on every node", 20*time.Second, func() bool {
		first = ""
		for i, id := range c.ids(3) {
			status, b, _, err := c.tryGet(id, path)
			if err != nil || status != http.StatusOK || !ok(string(b)) || i > 0 && string(b) != first {
				return false
			}
			first = string(b)
		}
		return true
	})
	return first
}

// uploadStatus publishes a fresh upload to a node (a 503 retried, as an
// app would) and returns the status and the answer's GAEN error code;
// chaff sends it as a decoy.
func (c *cluster) uploadStatus(id string, chaff bool) (int, string) {
	c.t.Helper()
	req, err := c.signer.RandomUpload(14, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := json.Marshal(req)
	var code string
	status := retryUnavailable(publishRetry, func() int {
		r, _ := http.NewRequest(http.MethodPost, c.node(id).url()+"/v1/publish", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if chaff {
			r.Header.Set("X-Chaff", "1")
		}
		resp, err := c.client.Do(r)
		if err != nil {
			c.t.Fatalf("upload to %s: %v", id, err)
		}
		defer resp.Body.Close()
		var answer struct{ Code string }
		json.NewDecoder(resp.Body).Decode(&answer)
		code = answer.Code
		return resp.StatusCode
	})
	return status, code
}

// A region runs through its whole end of service, its clock moved by
// restarts: an operator schedules it (apps told the date at once), from
// the wind-down every node refuses uploads and the verification API with
// 410 service_ended while decoys answer as before and the files stay; at
// the end the status estimated the last keys have aged out, the index is
// empty on every node and the configuration says "ended", the same bytes
// everywhere; a day later the submissions, codes, API keys and workers'
// accounts are deleted, which the console shows as done.
func TestEndOfServiceThroughTheTestClock(t *testing.T) {
	c, deviceKey, labKey := verificationCluster(t)
	c.cli("appconfig", "set", "--addr", c.node("n1").url(), "--file", "../deploy/appconfig/example.json")
	c.addWorker("n1", "w@lab.example", "W", "lab", "issue")
	c.addWorker("n1", "ops@region.example", "O", "", "operator")
	if _, err := c.upload(c.node("n2").url()); err != nil {
		t.Fatal(err)
	}
	status, issued := c.api("n1", "/api/issue", labKey, map[string]any{"testType": "confirmed", "symptomDate": time.Now().UTC().Format("2006-01-02")})
	if status != http.StatusOK {
		t.Fatalf("issue: %d %v", status, issued)
	}
	c.adminPost("n1", "/v1/admin/seal")
	windDown := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if out := c.cli("service", "end", "--addr", c.node("n3").url(), "--wind-down-from", windDown.Format(time.RFC3339), "--delete-after", "24h"); !strings.Contains(out, "stage: scheduled") {
		t.Fatalf("service end: %s", out)
	}
	c.sameOnEveryNode("the end announced", "/v1/appconfig", func(b string) bool {
		return strings.Contains(b, `"service":"active"`) && strings.Contains(b, `"version":2`)
	})
	doc := c.sameOnEveryNode("the announced document", "/v1/appconfig/v2.json", func(string) bool { return true })
	if !strings.Contains(doc, `"windDownFrom": "`+windDown.Format(time.RFC3339)+`"`) {
		t.Fatalf("the document tells no wind-down: %s", doc)
	}
	index := c.sameOnEveryNode("the index", "/v1/exports/index.txt", func(b string) bool { return strings.TrimSpace(b) != "" })

	c.moveClock(windDown.Add(time.Hour))
	c.adminPost("n1", "/v1/admin/expire")
	for _, id := range c.ids(3) {
		if status, code := c.uploadStatus(id, false); status != http.StatusGone || code != "service_ended" {
			t.Fatalf("an upload to %s while winding down: %d %s", id, status, code)
		}
		if status, _ := c.uploadStatus(id, true); status != http.StatusOK {
			t.Fatalf("a decoy upload to %s: %d", id, status)
		}
		if status, ans := c.api(id, "/api/verify", deviceKey, map[string]any{"code": issued["code"]}); status != http.StatusGone || ans["errorCode"] != "service_ended" {
			t.Fatalf("verify on %s while winding down: %d %v", id, status, ans)
		}
	}
	c.sameOnEveryNode("winding down told", "/v1/appconfig", func(b string) bool { return strings.Contains(b, `"service":"winding-down"`) })
	c.sameOnEveryNode("the files still served", "/v1/exports/index.txt", func(b string) bool { return b == index })
	v := c.serviceView("n2")
	endDue, err := time.Parse(time.RFC3339, v.EndDue)
	if v.Stage != "winding-down" || err != nil {
		t.Fatalf("winding down: %+v", v)
	}

	c.moveClock(endDue.Add(time.Hour))
	c.adminPost("n2", "/v1/admin/expire")
	c.sameOnEveryNode("an empty index", "/v1/exports/index.txt", func(b string) bool { return b == "" })
	pointer := c.sameOnEveryNode("the end told", "/v1/appconfig", func(b string) bool { return strings.Contains(b, `"service":"ended"`) })
	var current struct{ Zip string }
	json.Unmarshal([]byte(pointer), &current)
	c.sameOnEveryNode("the signed configuration", current.Zip, func(b string) bool { return len(b) > 0 })
	v = c.serviceView("n3")
	endedAt, err := time.Parse(time.RFC3339, v.EndedAt)
	if v.Stage != "ended" || err != nil || v.Deleted != nil {
		t.Fatalf("ended: %+v", v)
	}
	if out, err := c.cliResult("service", "cancel", "--addr", c.node("n1").url()); err == nil || !strings.Contains(out, "can no longer be moved or cancelled") {
		t.Fatalf("a cancel after the end: %v %s", err, out)
	}

	c.moveClock(endedAt.Add(25 * time.Hour))
	c.adminPost("n3", "/v1/admin/expire")
	c.waitFor("the deletion", 20*time.Second, func() bool { return c.serviceView("n1").Stage == "deleted" })
	v = c.serviceView("n1")
	if v.Deleted.Accounts != 1 || v.Deleted.APIKeys != 2 {
		t.Fatalf("deleted: %+v", v.Deleted)
	}
	if out := c.cli("users", "list", "--addr", c.node("n2").url()); strings.Contains(out, "w@lab.example") || !strings.Contains(out, "ops@region.example") {
		t.Fatalf("accounts after the deletion:\n%s", out)
	}
	ctx := browser(t)
	base := c.node("n2").url() + "/portal"
	signIn(t, ctx, base, "ops@region.example", "correct horse battery staple", "#members")
	run(t, ctx, "the end-of-service page", chromedp.Navigate(base+"/service"), chromedp.WaitVisible(css("#deleted")))
	if got := text(t, ctx, "#deleted"); !strings.Contains(got, "done: submissions 0") || !strings.Contains(got, "API keys 2, accounts 1") {
		t.Fatalf("the console shows %q", got)
	}
	shot(t, ctx, "en-1280-ops-service-deleted")
}
