package clustertest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed/feedpb"
)

// exportKey writes a region export key and returns the flags that use it.
func exportKey(t testing.TB, dir string) (*ecdsa.PrivateKey, []string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(dir, "export-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, []string{"--export-key-file", path, "--export-key-id", "test", "--export-key-version", "v1"}
}

// keyServiceCluster is a 3-node region that seals every second.
func keyServiceCluster(t *testing.T, extra ...string) (*cluster, *ecdsa.PrivateKey) {
	dir := t.TempDir()
	key, flags := exportKey(t, dir)
	c := newCluster(t, append(append(flags, "--seal-interval", "1s", "--seal-min-keys", "50"), extra...)...)
	c.form(3)
	return c, key
}

func (c *cluster) get(id, path string) (int, []byte, http.Header) {
	c.t.Helper()
	status, b, h, err := c.tryGet(id, path)
	if err != nil {
		c.t.Fatalf("GET %s on %s: %v", path, id, err)
	}
	return status, b, h
}

// tryGet is get for a node that may be down.
func (c *cluster) tryGet(id, path string) (int, []byte, http.Header, error) {
	return c.getAs(id, path, "")
}

// tryAdminGet is tryGet with the region's admin token.
func (c *cluster) tryAdminGet(id, path string) (int, []byte, error) {
	status, b, _, err := c.getAs(id, path, c.token)
	return status, b, err
}

func (c *cluster) getAs(id, path, token string) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, c.node(id).url()+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// Every node lists the same index and serves byte-identical export files
// that verify with the region's key and hold every acknowledged key.
func TestExportsIdenticalOnEveryNode(t *testing.T) {
	c, key := keyServiceCluster(t)
	acked := &ackSet{}
	for _, id := range c.ids(3) {
		keys, err := c.upload(c.node(id).url())
		if err != nil {
			t.Fatal(err)
		}
		acked.add(keys)
	}
	var names []string
	c.waitFor("every node to list all acknowledged keys in its exports", 30*time.Second, func() bool {
		index := map[string]bool{}
		for _, id := range c.ids(3) {
			_, b, _ := c.get(id, "/v1/exports/index.txt")
			index[string(b)] = true
		}
		if len(index) != 1 {
			return false
		}
		for b := range index {
			names = strings.Split(b, "\n")
		}
		return names[0] != "" && exportHolds(t, c, "n1", names, acked.snapshot())
	})
	for _, name := range names {
		var first []byte
		for _, id := range c.ids(3) {
			status, b, h := c.get(id, "/"+name)
			if status != http.StatusOK || !strings.Contains(h.Get("Cache-Control"), "immutable") {
				t.Fatalf("%s on %s: %d %v", name, id, status, h)
			}
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				t.Fatalf("%s differs between nodes", name)
			}
			d, err := export.Decode(b)
			if err != nil || d.Verify(&key.PublicKey, "test", "v1") != nil {
				t.Fatalf("%s from %s does not verify: %v", name, id, err)
			}
			if len(d.File.Keys) < 50 {
				t.Fatalf("%s holds %d keys: not padded to 50", name, len(d.File.Keys))
			}
		}
	}
}

// exportHolds reports whether the files hold every wanted key.
func exportHolds(t *testing.T, c *cluster, id string, names, want []string) bool {
	have := map[string]bool{}
	for _, name := range names {
		status, b, _ := c.get(id, "/"+name)
		if status != http.StatusOK {
			return false
		}
		d, err := export.Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		for _, k := range d.File.Keys {
			have[base64.StdEncoding.EncodeToString(k.Data[:])] = true
		}
	}
	for _, k := range want {
		if !have[k] {
			return false
		}
	}
	return true
}

// Two uploads with the same one-time code race on two nodes: exactly one
// is stored, every time.
func TestCodeRaceAcrossNodes(t *testing.T) {
	c, _ := keyServiceCluster(t)
	token := c.providerToken(c.node("n2").url(), "clinic")
	for round := range 10 {
		code := c.issueCode(token, c.node(fmt.Sprintf("n%d", round%3+1)).url())
		var wg sync.WaitGroup
		results := make([]int, 2)
		for i, id := range []string{"n2", "n3"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = c.codeUpload(c.node(id).url(), code)
			}()
		}
		wg.Wait()
		ok := 0
		for _, r := range results {
			if r == http.StatusOK {
				ok++
			} else if r != http.StatusUnauthorized {
				t.Fatalf("round %d: unexpected status %d", round, r)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d uploads admitted by one code (statuses %v)", round, ok, results)
		}
	}
}

// raiseCodeQuota lets every provider issue a million codes a day: a load
// that issues codes by the thousand is no lab's day.
func (c *cluster) raiseCodeQuota() {
	c.t.Helper()
	c.cli("policy", "set", "--addr", c.node(c.id(1)).url(), "--codes-per-provider-per-day", "1000000")
}

// providerToken registers a provider through addr and returns its token
// (the last line the command prints).
func (c *cluster) providerToken(addr, id string) string {
	c.t.Helper()
	out := strings.TrimSpace(c.cli("providers", "add", "--addr", addr, "--id", id, "--name", "Clinic "+id))
	return out[strings.LastIndex(out, "\n")+1:]
}

func (c *cluster) issueCode(token, addr string) string {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, addr+"/v1/codes", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Code string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("issue code: %d %v", resp.StatusCode, err)
	}
	return out.Code
}

// codeUpload publishes fresh keys with a one-time code; it returns the status.
func (c *cluster) codeUpload(addr, code string) int {
	req, err := c.signer.RandomUpload(14, time.Now())
	if err != nil {
		c.t.Error(err)
		return 0
	}
	req.VerificationPayload = code
	body, _ := json.Marshal(req)
	resp, err := c.client.Post(addr+"/v1/publish", "application/json", bytes.NewReader(body))
	if err != nil {
		c.t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A rollback through one node reaches every node: the keys show as
// removals in the delta feed and as REVOKED revised keys in the exports.
func TestRollbackReachesEveryNode(t *testing.T) {
	c, _ := keyServiceCluster(t)
	keys, err := c.upload(c.node("n1").url())
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor("the upload to be sealed", 30*time.Second, func() bool {
		status, _, h := c.get("n3", "/v1/keys?since=0")
		return status == http.StatusOK && h.Get("X-Next-Cursor") != "0"
	})
	_, _, h := c.get("n3", "/v1/keys?since=0")
	cursor := h.Get("X-Next-Cursor")
	var subs struct {
		Submissions []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(c.cli("submissions", "--json", "--addr", c.node("n2").url())), &subs); err != nil || len(subs.Submissions) != 1 {
		t.Fatalf("submissions: %v %+v", err, subs)
	}
	c.cli("revoke", "--addr", c.node("n2").url(), "--reason", "wrong test result", "--submission", subs.Submissions[0].ID)
	for _, id := range c.ids(3) {
		c.waitFor(id+" to publish the removals", 30*time.Second, func() bool {
			status, b, _ := c.get(id, "/v1/keys?since="+cursor)
			var f feedpb.KeyFeed
			if status != http.StatusOK || proto.Unmarshal(b, &f) != nil {
				return false
			}
			removed := map[string]bool{}
			for _, k := range f.GetRemoved() {
				removed[base64.StdEncoding.EncodeToString(k.GetKeyData())] = true
			}
			for _, k := range keys {
				if !removed[k] {
					return false
				}
			}
			return true
		})
	}
}

// Retention removes old batches and their keys from every node. Seal and
// expiry are driven by hand (admin API) so that the key is published before
// retention removes it with its batch.
func TestRetentionRemovesOldKeys(t *testing.T) {
	dir := t.TempDir()
	_, flags := exportKey(t, dir)
	c := newCluster(t, append(flags, "--seal-interval", "1h", "--retention", "3s")...)
	c.form(3)
	acked := &ackSet{}
	keys, err := c.upload(c.node("n1").url())
	if err != nil {
		t.Fatal(err)
	}
	acked.add(keys)
	c.waitHasAll(acked, 10*time.Second, c.ids(3)...)
	c.adminPost("n2", "/v1/admin/seal")
	for _, id := range c.ids(3) {
		c.waitFor(id+" to list the batch", 10*time.Second, func() bool {
			_, b, _ := c.get(id, "/v1/exports/batches.txt")
			return len(b) > 0
		})
	}
	c.waitFor("retention to remove the batch and its keys everywhere", 30*time.Second, func() bool {
		c.adminPost("n3", "/v1/admin/expire")
		for _, id := range c.ids(3) {
			keys, err := c.keysOn(id)
			_, b, _ := c.get(id, "/v1/exports/batches.txt")
			if err != nil || len(keys) != 0 || len(b) != 0 {
				return false
			}
		}
		return true
	})
}

// The per-client rate limit answers 429 with Retry-After.
func TestPublishRateLimit(t *testing.T) {
	c := newCluster(t, "--rate-publish", "0.1", "--rate-publish-burst", "2")
	c.form(1)
	statuses := map[int]int{}
	var retryAfter string
	for range 5 {
		req, _ := c.signer.RandomUpload(14, time.Now())
		body, _ := json.Marshal(req)
		resp, err := c.client.Post(c.node("n1").url()+"/v1/publish", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	if statuses[http.StatusOK] != 2 || statuses[http.StatusTooManyRequests] != 3 || retryAfter == "" {
		t.Fatalf("statuses %v, Retry-After %q", statuses, retryAfter)
	}
}
