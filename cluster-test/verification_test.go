package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

const verifyAppID = "org.example.app"

// verificationCluster is a 3-node region running the verification
// service, with a provider "lab", a device key for apps and an admin key
// of the lab, known on every node.
func verificationCluster(t testing.TB) (c *cluster, deviceKey, labKey string) {
	t.Helper()
	_, exportFlags := exportKey(t, t.TempDir())
	c = newCluster(t, append(append(exportFlags, "--seal-interval", "1h", "--padding-keys-per-day", "0"), verificationFlags(t)...)...)
	c.form(3)
	deviceKey, labKey = c.verificationKeys()
	return c, deviceKey, labKey
}

// verificationFlags run a region's verification service with keys of its
// own for certificates and tokens, for apps of verifyAppID.
func verificationFlags(t testing.TB) []string {
	certDir, tokenDir := t.TempDir(), t.TempDir()
	exportKey(t, certDir)
	exportKey(t, tokenDir)
	return []string{"--verify-cert-key-file", filepath.Join(certDir, "export-key.pem"), "--verify-cert-kid", "v1",
		"--verify-token-key-file", filepath.Join(tokenDir, "export-key.pem"), "--verify-token-kid", "t1",
		"--verify-app-id", verifyAppID}
}

// verificationKeys adds the provider "lab", a device key for apps and an
// admin key of the lab, and waits until every node of the formed region
// knows both.
func (c *cluster) verificationKeys() (deviceKey, labKey string) {
	c.t.Helper()
	c.cli("providers", "add", "--addr", c.node(c.id(1)).url(), "--id", "lab", "--name", "Lab")
	lastLine := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	deviceKey = lastLine(c.cli("apikeys", "add", "--addr", c.node(c.id(2)).url(), "--name", "app", "--kind", "device"))
	labKey = lastLine(c.cli("apikeys", "add", "--addr", c.node(c.id(3)).url(), "--name", "lab-system", "--kind", "admin", "--provider", "lab"))
	for _, id := range c.ids(3) {
		c.waitFor(id+" to know both API keys", 10*time.Second, func() bool {
			s1, _ := c.api(id, "/api/checkcodestatus", labKey, map[string]any{"uuid": "none"})
			s2, _ := c.api(id, "/api/certificate", deviceKey, map[string]any{"token": "x"})
			return s1 == http.StatusNotFound && s2 == http.StatusBadRequest
		})
	}
	return deviceKey, labKey
}

// api posts JSON to a node's verification API with an API key; an answer
// of 503 (retry: no leader, catching up) is sent again for publishRetry,
// as a client would.
func (c *cluster) api(id, path, key string, body any) (int, map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(body)
	var out map[string]any
	status := retryUnavailable(publishRetry, func() int {
		req, _ := http.NewRequest(http.MethodPost, c.node(id).url()+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", key)
		resp, err := c.client.Do(req)
		if err != nil {
			c.t.Fatalf("POST %s on %s: %v", path, id, err)
		}
		defer resp.Body.Close()
		out = nil
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode
	})
	return status, out
}

// The whole flow of an unmodified app across the region: a code issued on
// n1, verified on n2, the certificate from n3, the upload on n1 with that
// certificate, and the keys in the next export on every node.
func TestVerificationFlowAcrossNodes(t *testing.T) {
	c, deviceKey, labKey := verificationCluster(t)
	status, issued := c.api("n1", "/api/issue", labKey, map[string]any{"testType": "confirmed", "symptomDate": time.Now().UTC().Format("2006-01-02")})
	if status != http.StatusOK || len(issued["code"].(string)) != 8 {
		t.Fatalf("issue: %d %v", status, issued)
	}
	status, verified := c.api("n2", "/api/verify", deviceKey, map[string]any{"code": issued["code"], "accept": []string{"confirmed", "likely", "negative"}})
	if status != http.StatusOK || verified["testtype"] != "confirmed" {
		t.Fatalf("verify on n2: %d %v", status, verified)
	}
	// A consistent read of the code's status sees the claim at once on
	// every node (a follower's goes through the leader).
	for _, id := range c.ids(3) {
		status, st := c.api(id, "/api/checkcodestatus?consistent=true", labKey, map[string]any{"uuid": issued["uuid"]})
		if status != http.StatusOK || st["claimed"] != true {
			t.Fatalf("consistent code status on %s right after the claim: %d %v", id, status, st)
		}
	}
	req, mac, err := publish.RandomKeys(verifyAppID, 14, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, cert := c.api("n3", "/api/certificate", deviceKey, map[string]any{"token": verified["token"], "ekeyhmac": mac})
	if status != http.StatusOK {
		t.Fatalf("certificate on n3: %d %v", status, cert)
	}
	req.VerificationPayload = cert["certificate"].(string)
	body, _ := json.Marshal(req)
	resp, err := c.client.Post(c.node("n1").url()+"/v1/publish", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publish with the region's certificate: %d", resp.StatusCode)
	}
	var keys []string
	for _, k := range req.Keys {
		keys = append(keys, k.Key)
	}
	c.adminPost("n2", "/v1/admin/seal")
	for _, id := range c.ids(3) {
		c.waitFor(id+" to export the uploaded keys", 10*time.Second, func() bool {
			_, list, _ := c.get(id, "/v1/exports/batches.txt")
			return len(list) > 0 && exportHolds(t, c, id, strings.Split(string(list), "\n"), keys)
		})
	}
}

// covid-node dev-flow runs the lab's call and the app's three against a
// region, as the README shows, each answered 200, and the keys it
// published are stored.
func TestDevFlowCommand(t *testing.T) {
	c, deviceKey, labKey := verificationCluster(t)
	out, err := exec.Command(binary, "dev-flow", "--addr", c.node("n2").url(), "--lab-key", labKey, "--app-key", deviceKey,
		"--app-id", verifyAppID).CombinedOutput()
	if err != nil || strings.Count(string(out), " 200\n") != 4 || !strings.Contains(string(out), "14 keys inserted") {
		t.Fatalf("dev-flow: %v\n%s", err, out)
	}
	c.waitFor("the published keys on n3", 10*time.Second, func() bool {
		_, b, _ := c.tryAdminGet("n3", "/v1/admin/keys")
		return strings.Count(string(b), `"key"`) >= 14
	})
}

// One code raced on two nodes gives exactly one token; one token raced on
// two nodes gives exactly one certificate.
func TestVerificationRacesAcrossNodes(t *testing.T) {
	c, deviceKey, labKey := verificationCluster(t)
	race := func(path string, body map[string]any, nodes ...string) (wins int, answers []string) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, out := c.api(id, path, deviceKey, body)
				mu.Lock()
				defer mu.Unlock()
				answers = append(answers, fmt.Sprintf("%s: %d %v", id, status, out["errorCode"]))
				if status == http.StatusOK {
					wins++
				}
			}()
		}
		wg.Wait()
		return wins, answers
	}
	for round := range 5 {
		_, issued := c.api("n1", "/api/issue", labKey, map[string]any{"testType": "confirmed"})
		for _, id := range c.ids(3) {
			c.waitFor(id+" to have the code", 10*time.Second, func() bool {
				status, _ := c.api(id, "/api/checkcodestatus", labKey, map[string]any{"uuid": issued["uuid"]})
				return status == http.StatusOK
			})
		}
		wins, answers := race("/api/verify", map[string]any{"code": issued["code"]}, "n2", "n3")
		if wins != 1 {
			t.Fatalf("round %d: the code gave %d tokens: %v", round, wins, answers)
		}
	}
	for round := range 5 {
		_, issued := c.api("n1", "/api/issue", labKey, map[string]any{"testType": "confirmed"})
		status, verified := c.api("n1", "/api/verify", deviceKey, map[string]any{"code": issued["code"]})
		if status != http.StatusOK {
			t.Fatalf("verify: %d %v", status, verified)
		}
		_, mac, _ := publish.RandomKeys(verifyAppID, 3, time.Now())
		wins, answers := race("/api/certificate", map[string]any{"token": verified["token"], "ekeyhmac": mac}, "n1", "n2", "n3")
		if wins != 1 {
			t.Fatalf("round %d: the token gave %d certificates: %v", round, wins, answers)
		}
	}
}

// The reference verification client's exact sequence (issue,
// checkcodestatus, verify, checkcodestatus, certificate, publish), 20
// times with each call on another node and 20 times all on one follower,
// never sees a stale answer: a code just issued is found, a claim just made
// shows as claimed, and an API key just added through a follower admits
// its holder there and everywhere at once.
func TestReferenceClientSequenceReadsItsWrites(t *testing.T) {
	c, deviceKey, labKey := verificationCluster(t)
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	follower := without(c.ids(3), leader)[0]
	stale := 0
	round := func(nodes [6]string) {
		step := func(i int, path, key string, body map[string]any, want int, check func(map[string]any) bool) map[string]any {
			status, out := c.api(nodes[i], path, key, body)
			if status != want || (check != nil && !check(out)) {
				stale++
				t.Errorf("%s on %s: %d %v", path, nodes[i], status, out)
			}
			return out
		}
		issued := step(0, "/api/issue", labKey, map[string]any{"testType": "confirmed", "symptomDate": time.Now().UTC().Format("2006-01-02")}, http.StatusOK, nil)
		claimed := func(want bool) func(map[string]any) bool {
			return func(st map[string]any) bool { return st["claimed"] == want }
		}
		step(1, "/api/checkcodestatus", labKey, map[string]any{"uuid": issued["uuid"]}, http.StatusOK, claimed(false))
		verified := step(2, "/api/verify", deviceKey, map[string]any{"code": issued["code"]}, http.StatusOK, nil)
		step(3, "/api/checkcodestatus", labKey, map[string]any{"uuid": issued["uuid"]}, http.StatusOK, claimed(true))
		req, mac, err := publish.RandomKeys(verifyAppID, 3, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert := step(4, "/api/certificate", deviceKey, map[string]any{"token": verified["token"], "ekeyhmac": mac}, http.StatusOK, nil)
		req.VerificationPayload, _ = cert["certificate"].(string)
		if _, err := c.publishRequest(c.node(nodes[5]).url(), req); err != nil {
			stale++
			t.Errorf("publish on %s with the certificate just made: %v", nodes[5], err)
		}
	}
	ids := c.ids(3)
	for r := range 20 {
		round([6]string{ids[r%3], ids[(r+1)%3], ids[(r+2)%3], ids[r%3], ids[(r+1)%3], ids[(r+2)%3]})
	}
	for range 20 {
		round([6]string{follower, follower, follower, follower, follower, follower})
	}
	refused := 0
	for i, id := range []string{follower, leader, follower, follower, follower} {
		out := c.cli("apikeys", "add", "--addr", c.node(id).url(), "--name", fmt.Sprintf("app-%d", i), "--kind", "device")
		key := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
		for _, at := range append([]string{id}, c.ids(3)...) {
			if status, body := c.api(at, "/api/certificate", key, map[string]any{"token": "x"}); status != http.StatusBadRequest {
				refused++
				t.Errorf("a device key just added through %s, used on %s: %d %v", id, at, status, body)
			}
		}
	}
	t.Logf("40 rounds of the reference sequence: %d stale or failed answers; 5 device keys used at once on 4 nodes each: %d refused", stale, refused)
}

// The reference verification server's own end-to-end client (its
// tools/e2e-test: issue, checkcodestatus, verify, checkcodestatus,
// certificate, publish) passes 20 times in a row against a follower of a
// 3-node region. It runs where COVID_REFERENCE_E2E names the client's
// binary (make reference-e2e builds it from the reference's Go module and
// runs this test); make test does without it, since the build fetches
// hundreds of modules.
func TestReferenceE2EThroughFollower(t *testing.T) {
	bin := os.Getenv("COVID_REFERENCE_E2E")
	if bin == "" {
		t.Skip("COVID_REFERENCE_E2E is not set: make reference-e2e builds the reference client and runs this test")
	}
	c, deviceKey, labKey := verificationCluster(t)
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	follower := c.node(without(c.ids(3), leader)[0]).url()
	for round := range 20 {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "VERIFICATION_ADMIN_API="+follower, "VERIFICATION_ADMIN_API_KEY="+labKey,
			"VERIFICATION_SERVER_API="+follower, "VERIFICATION_SERVER_API_KEY="+deviceKey, "KEY_SERVER="+follower,
			"HEALTH_AUTHORITY_CODE="+verifyAppID, "E2E_SKIP_SMS=true", "LOG_LEVEL=warn",
			"DB_ENCRYPTION_KEY=unused") // its configuration requires it; the client opens no database
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("round %d of the reference e2e-test through follower %s: %v\n%s", round, follower, err, out)
		}
	}
	t.Logf("the reference e2e-test passed 20 times through follower %s", follower)
}
