package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// post sends a JSON body to a node (with the admin token when admin is
// set) and decodes the answer into a map, so that a test sees every field
// the node sent, and only those.
func (c *cluster) post(addr, path, bearer string, body any) (int, map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, addr+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s on %s: %v", path, addr, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("POST %s on %s: %d, not JSON: %s", path, addr, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// fields checks that an answer holds exactly the wanted fields, each
// accepted by its check.
func fields(t *testing.T, what string, got map[string]any, want map[string]func(any) bool) {
	t.Helper()
	for name, ok := range want {
		v, present := got[name]
		if !present || !ok(v) {
			t.Errorf("%s: field %q = %v (present %v)", what, name, v, present)
		}
	}
	for name := range got {
		if _, expected := want[name]; !expected {
			t.Errorf("%s: unexpected field %q = %v", what, name, got[name])
		}
	}
}

func equals(want any) func(any) bool { return func(v any) bool { return v == want } }

func between(lo, hi float64) func(any) bool {
	return func(v any) bool { f, ok := v.(float64); return ok && f >= lo && f <= hi }
}

func nonEmpty(v any) bool { s, ok := v.(string); return ok && s != "" }

// timeNear accepts an RFC 3339 time within a minute of want.
func timeNear(want time.Time) func(any) bool {
	return func(v any) bool {
		s, _ := v.(string)
		at, err := time.Parse(time.RFC3339, s)
		return err == nil && at.Sub(want).Abs() < time.Minute
	}
}

// Codes, uploads, revocations and seals answer with every field right
// through every node: a follower forwards the write and hands back the
// same typed result the leader computed.
func TestAnswersThroughEveryNode(t *testing.T) {
	c, _ := keyServiceCluster(t, "--seal-interval", "1h")
	token := c.providerToken(c.node("n1").url(), "clinic")
	for round, id := range c.ids(3) {
		addr := c.node(id).url()
		now := time.Now()
		status, code := c.post(addr, "/v1/codes", token, map[string]string{"report_type": "confirmed"})
		if status != http.StatusOK {
			t.Fatalf("code through %s: %d %v", id, status, code)
		}
		fields(t, "code through "+id, code, map[string]func(any) bool{
			"code":      func(v any) bool { s, _ := v.(string); return len(s) == 19 && verify.LooksLikeCode(s) },
			"uuid":      nonEmpty,
			"issued_at": timeNear(now), "expires_at": timeNear(now.Add(24 * time.Hour)),
		})

		upload, err := c.signer.RandomUpload(14, now)
		if err != nil {
			t.Fatal(err)
		}
		status, pub := c.post(addr, "/v1/publish", "", upload)
		if status != http.StatusOK {
			t.Fatalf("publish through %s: %d %v", id, status, pub)
		}
		fields(t, "publish through "+id, pub, map[string]func(any) bool{
			"revisionToken": nonEmpty, "insertedExposures": equals(14.0), "padding": nonEmpty,
		})

		byCode, _ := c.signer.RandomUpload(14, now)
		byCode.VerificationPayload = code["code"].(string)
		if status, res := c.post(addr, "/v1/publish", "", byCode); status != http.StatusOK || res["insertedExposures"] != 14.0 {
			t.Fatalf("code upload through %s: %d %v", id, status, res)
		}
		var codeSub string
		c.waitFor(id+" to list the code upload", 10*time.Second, func() bool {
			var subs struct {
				Submissions []struct{ ID, Provider string }
			}
			if err := json.Unmarshal([]byte(c.cli("submissions", "--json", "--addr", addr)), &subs); err != nil {
				t.Fatal(err)
			}
			var byCode []string
			for _, s := range subs.Submissions {
				if s.Provider == "clinic" {
					byCode = append(byCode, s.ID)
				}
			}
			if len(byCode) == round+1 {
				codeSub = byCode[round] // sorted by index: the newest last
			}
			return codeSub != ""
		})
		status, rv := c.post(addr, "/v1/admin/revocations", c.token, map[string]string{"reason": "test " + id, "submission_id": codeSub})
		if status != http.StatusOK {
			t.Fatalf("revoke through %s: %d %v", id, status, rv)
		}
		fields(t, "revoke through "+id, rv, map[string]func(any) bool{"revoked": equals(14.0)})

		status, seal := c.post(addr, "/v1/admin/seal", c.token, nil)
		if status != http.StatusOK {
			t.Fatalf("seal through %s: %d %v", id, status, seal)
		}
		// 14 keys of the certificate upload (the code upload was revoked
		// before it was published), padded to 50 plus up to 100.
		fields(t, "seal through "+id, seal, map[string]func(any) bool{
			"seq": equals(float64(round + 1)), "keys": equals(14.0), "padding": between(36, 136), "revised": equals(0.0),
		})
	}
}

// An app whose upload got no answer (the leader stopped mid-way, then was
// killed) sends the same body again through a follower: it gets 200 with
// the first outcome, and its keys are stored once, on every node.
func TestExactRetryAfterLeaderKilled(t *testing.T) {
	c, _ := keyServiceCluster(t, "--seal-interval", "1h")
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	followers := without(c.ids(3), leader)
	upload, err := c.signer.RandomUpload(14, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(upload)

	if err := c.node(leader).cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped leader %s", leader)
	// The first attempt hangs on the stopped leader; the app gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.node(followers[0]).url()+"/v1/publish", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := c.client.Do(req); err == nil {
			t.Logf("first attempt answered %d", resp.StatusCode)
			resp.Body.Close()
		} else {
			t.Logf("first attempt: %v", err)
		}
	}()
	wg.Wait()
	c.kill9(leader)
	c.waitLeader(15*time.Second, followers...)

	var answer publish.Response
	c.waitFor("the exact retry to be answered 200", 30*time.Second, func() bool {
		resp, err := c.client.Post(c.node(followers[1]).url()+"/v1/publish", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		answer = publish.Response{}
		json.NewDecoder(resp.Body).Decode(&answer)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("retry: %d %+v", resp.StatusCode, answer)
		}
		return resp.StatusCode == http.StatusOK
	})
	if answer.InsertedExposures != 14 || answer.RevisionToken == "" || answer.Code != "" {
		t.Fatalf("retry answer: %+v", answer)
	}
	c.start(nodeIndex(leader))
	var want []string
	for _, k := range upload.Keys {
		want = append(want, k.Key)
	}
	acked := &ackSet{}
	acked.add(want)
	c.waitHasAll(acked, 30*time.Second, c.ids(3)...)
	for _, id := range c.ids(3) {
		var subs struct{ Submissions []struct{ Keys int } }
		if err := json.Unmarshal([]byte(c.cli("submissions", "--json", "--addr", c.node(id).url())), &subs); err != nil {
			t.Fatal(err)
		}
		if len(subs.Submissions) != 1 || subs.Submissions[0].Keys != 14 {
			t.Fatalf("%s keeps submissions %+v, want one of 14 keys", id, subs.Submissions)
		}
	}
}

func nodeIndex(id string) int {
	var i int
	fmt.Sscanf(id, "n%d", &i)
	return i
}

// HEAD answers every download route on every node with the headers of GET
// and no body.
func TestHeadOnEveryDownloadRoute(t *testing.T) {
	c, _ := keyServiceCluster(t, "--seal-interval", "1h")
	if _, err := c.upload(c.node("n1").url()); err != nil {
		t.Fatal(err)
	}
	c.adminPost("n1", "/v1/admin/seal")
	c.waitFor("every node to list the batch", 30*time.Second, func() bool {
		for _, id := range c.ids(3) {
			if _, b, _ := c.get(id, "/v1/exports/batches.txt"); len(b) == 0 {
				return false
			}
		}
		return true
	})
	_, index, _ := c.get("n1", "/v1/exports/index.txt")
	_, batches, _ := c.get("n1", "/v1/exports/batches.txt")
	routes := []string{"/v1/exports/index.txt", "/v1/exports/batches.txt", "/" + string(index), "/" + string(batches),
		"/v1/keys", "/v1/keys?since=0&until=1", "/v1/regions/test/exports/index.txt", "/v1/status"}
	// The same Accept-Encoding on both: the lists answer it with
	// representations of their own (a gzip one has its own ETag and length).
	do := func(method, url, encoding string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Accept-Encoding", encoding)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, id := range c.ids(3) {
		for _, route := range routes {
			for _, encoding := range []string{"identity", "gzip"} {
				get, getBody := do(http.MethodGet, c.node(id).url()+route, encoding)
				head, headBody := do(http.MethodHead, c.node(id).url()+route, encoding)
				if get.StatusCode != http.StatusOK || head.StatusCode != http.StatusOK || len(headBody) != 0 || len(getBody) == 0 {
					t.Fatalf("%s on %s (%s): GET %d (%d bytes), HEAD %d (%d bytes)", route, id, encoding, get.StatusCode, len(getBody), head.StatusCode, len(headBody))
				}
				for _, h := range []string{"Content-Type", "ETag", "Cache-Control", "X-Next-Cursor", "Content-Encoding"} {
					if get.Header.Get(h) != head.Header.Get(h) {
						t.Errorf("%s on %s (%s): %s is %q on GET, %q on HEAD", route, id, encoding, h, get.Header.Get(h), head.Header.Get(h))
					}
				}
				if route != "/v1/status" && head.Header.Get("Content-Length") != fmt.Sprint(len(getBody)) {
					t.Errorf("%s on %s (%s): HEAD Content-Length %q, GET sent %d bytes", route, id, encoding, head.Header.Get("Content-Length"), len(getBody))
				}
			}
		}
	}
}
