package clustertest

import (
	"crypto/ecdsa"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/hsm/hsmtest"
)

// hsmRegion is a 3-node region whose export key 310/v1 is kept in a
// SoftHSM2 token (every node opens the same token), and the key's public
// half.
func hsmRegion(t *testing.T) (*cluster, *ecdsa.PublicKey) {
	t.Helper()
	token := hsmtest.SoftHSM(t)
	pubFile := filepath.Join(t.TempDir(), "export-310.pub.pem")
	flags := []string{"--pkcs11-module", token.Module, "--pkcs11-token", token.Token, "--pkcs11-pin-file", token.PinFile}
	out, err := exec.Command(binary, append([]string{"hsm", "keygen", "--label", "export-310", "--out", pubFile}, flags...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("hsm keygen: %v\n%s", err, out)
	}
	pemBytes, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := export.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, append(flags, "--export-key-file", "pkcs11:object=export-310", "--export-key-id", "310", "--export-key-version", "v1",
		"--seal-interval", "1h", "--seal-min-keys", "50")...)
	c.form(3)
	return c, pub
}

// servedAlike fetches every file a node lists in index.txt and
// batches.txt from every node, and fails unless each is the same bytes
// everywhere and verifies under pub; it returns the files by name.
func (c *cluster) servedAlike(t *testing.T, pub *ecdsa.PublicKey) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, list := range []string{"/v1/exports/index.txt", "/v1/exports/batches.txt"} {
		_, index, _ := c.get("n1", list)
		for _, name := range strings.Fields(string(index)) {
			var first []byte
			for _, id := range c.ids(3) {
				var body []byte
				c.waitFor(name+" on "+id, 20*time.Second, func() bool {
					status, b, _, err := c.tryGet(id, "/"+name)
					body = b
					return err == nil && status == http.StatusOK
				})
				if first == nil {
					first = body
				} else if string(body) != string(first) {
					t.Fatalf("%s differs between n1 and %s", name, id)
				}
			}
			d, err := export.Decode(first)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := d.Verify(pub, "310", "v1"); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			files[name] = first
		}
	}
	return files
}

// A region whose export key is in an HSM (SoftHSM2): the leader signs each
// file once and the region replicates the signature, so every node serves
// the same bytes, which the key's public half verifies; the app
// configuration's zip too. The leader killed right after a seal, before
// or after it signed, loses no signature: the next leader signs what is
// left, a file listed before keeps its bytes, and every node serves the
// same files again.
func TestExportKeyInAnHSM(t *testing.T) {
	c, pub := hsmRegion(t)
	if _, err := c.upload(c.node("n2").url()); err != nil {
		t.Fatal(err)
	}
	c.adminPost("n1", "/v1/admin/seal")
	c.sameOnEveryNode("a listed batch", "/v1/exports/batches.txt", func(b string) bool { return strings.TrimSpace(b) != "" })
	before := c.servedAlike(t, pub)

	c.cli("appconfig", "set", "--addr", c.node("n3").url(), "--file", "../deploy/appconfig/example.json")
	var zip []byte
	for _, id := range c.ids(3) {
		c.waitFor("the configuration's zip on "+id, 20*time.Second, func() bool {
			status, b, _, err := c.tryGet(id, "/v1/appconfig/v1.zip")
			if err != nil || status != http.StatusOK {
				return false
			}
			if zip == nil {
				zip = b
			}
			return string(b) == string(zip)
		})
	}
	if _, err := export.VerifyBlob(zip, pub, "310", "v1"); err != nil {
		t.Fatalf("the configuration's zip: %v", err)
	}

	leader := c.waitLeader(20*time.Second, c.ids(3)...)
	if _, err := c.upload(c.node(leader).url()); err != nil {
		t.Fatal(err)
	}
	c.adminPost(leader, "/v1/admin/seal")
	c.kill9(leader)
	rest := slices.DeleteFunc(c.ids(3), func(id string) bool { return id == leader })
	c.waitLeader(20*time.Second, rest...)
	c.start(int(leader[1] - '0'))
	c.waitReady(leader)
	c.waitFor("the second batch listed everywhere", 30*time.Second, func() bool {
		for _, id := range c.ids(3) {
			_, b, _, err := c.tryGet(id, "/v1/exports/batches.txt")
			if err != nil || len(strings.Fields(string(b))) < 2 {
				return false
			}
		}
		return true
	})
	after := c.servedAlike(t, pub)
	for name, data := range before {
		if got, ok := after[name]; ok && string(got) != string(data) {
			t.Fatalf("%s changed its bytes after the leader was killed", name)
		}
	}
}
