package clustertest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/hsm/hsmtest"
	"github.com/covid-backend/covid-backend/publish"
)

// hsmRegion is a 3-node region whose export key 310/v1, verification
// certificate and token keys and federation signing key are kept in a
// SoftHSM2 token (every node opens the same token), with the export key's
// and the federation key's public halves.
func hsmRegion(t testing.TB) (*cluster, *ecdsa.PublicKey, ed25519.PublicKey) {
	t.Helper()
	token := hsmtest.SoftHSM(t)
	flags := []string{"--pkcs11-module", token.Module, "--pkcs11-token", token.Token, "--pkcs11-pin-file", token.PinFile}
	keygen := func(label string, more ...string) any {
		pubFile := filepath.Join(t.TempDir(), label+".pub.pem")
		args := append(append([]string{"hsm", "keygen", "--label", label, "--out", pubFile}, more...), flags...)
		if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
			t.Fatalf("hsm keygen: %v\n%s", err, out)
		}
		pemBytes, err := os.ReadFile(pubFile)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(pemBytes)
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	exportPub := keygen("export-310").(*ecdsa.PublicKey)
	keygen("cert-v1")
	keygen("token-t1")
	fedPub := keygen("federation", "--ed25519").(ed25519.PublicKey)
	c := newCluster(t, append(flags, "--export-key-file", "pkcs11:object=export-310", "--export-key-id", "310", "--export-key-version", "v1",
		"--verify-cert-key-file", "pkcs11:object=cert-v1", "--verify-cert-kid", "v1", "--verify-token-key-file", "pkcs11:object=token-t1",
		"--verify-token-kid", "t1", "--verify-app-id", verifyAppID, "--signing-key-file", "pkcs11:object=federation",
		"--seal-interval", "1h", "--seal-min-keys", "50")...)
	c.form(3)
	return c, exportPub, fedPub
}

// appFlow runs an unmodified app's calls across the region: a code issued
// on n1, verified on n2 (a token signed in the HSM), a certificate from n3
// (signed in the HSM) and the upload with it on n1.
func (c *cluster) appFlow(t *testing.T, deviceKey, labKey string) {
	t.Helper()
	status, issued := c.api("n1", "/api/issue", labKey, map[string]any{"testType": "confirmed", "symptomDate": time.Now().UTC().Format("2006-01-02")})
	if status != http.StatusOK {
		t.Fatalf("issue: %d %v", status, issued)
	}
	status, verified := c.api("n2", "/api/verify", deviceKey, map[string]any{"code": issued["code"]})
	if status != http.StatusOK {
		t.Fatalf("verify: %d %v", status, verified)
	}
	req, mac, err := publish.RandomKeys(verifyAppID, 14, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, cert := c.api("n3", "/api/certificate", deviceKey, map[string]any{"token": verified["token"], "ekeyhmac": mac})
	if status != http.StatusOK {
		t.Fatalf("certificate: %d %v", status, cert)
	}
	req.VerificationPayload = cert["certificate"].(string)
	if _, err := c.publishRequest(c.node("n1").url(), req); err != nil {
		t.Fatalf("upload with the HSM's certificate: %v", err)
	}
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
			if len(files) == 0 {
				opensslVerifies(t, pub, d.Bin, d.Signatures[0].DER)
			}
			files[name] = first
		}
	}
	return files
}

// A region whose signing keys are in an HSM (SoftHSM2): an app's calls go
// through with tokens and certificates the HSM signed on each node; the
// leader signs each export file once and the region replicates the
// signature, so every node serves the same bytes, which the key's public
// half verifies; the app configuration's zip too; every node signs the
// federation batch through the token (Ed25519) to the same bytes. The leader killed right after a seal, before
// or after it signed, loses no signature: the next leader signs what is
// left, a file listed before keeps its bytes, and every node serves the
// same files again.
func TestSigningKeysInAnHSM(t *testing.T) {
	c, pub, fedPub := hsmRegion(t)
	deviceKey, labKey := c.verificationKeys()
	c.appFlow(t, deviceKey, labKey)
	c.adminPost("n1", "/v1/admin/seal")
	c.sameOnEveryNode("a listed batch", "/v1/exports/batches.txt", func(b string) bool { return strings.TrimSpace(b) != "" })
	before := c.servedAlike(t, pub)
	signed := c.sameOnEveryNode("the signed federation batch", "/v1/federation/batches/test/1", func(string) bool { return true })
	var sb fsmpb.SignedBatch
	if err := proto.Unmarshal([]byte(signed), &sb); err != nil || !ed25519.Verify(fedPub, append([]byte(fsm.FederationDomain), sb.GetBody()...), sb.GetSignature()) {
		t.Fatalf("the federation batch signed through the token does not verify: %v", err)
	}

	c.cli("appconfig", "set", "--addr", c.node("n3").url(), "--file", "../deploy/appconfig/example.json")
	c.sameOnEveryNode("the pointer at the signed version", "/v1/appconfig", func(b string) bool { return strings.Contains(b, `"version":1,`) })
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
	c.servedAlike(t, pub)
	for name, data := range before { // the first roll-up's name is superseded, still served for an hour
		for _, id := range c.ids(3) {
			if status, got, _ := c.get(id, "/"+name); status != http.StatusOK || string(got) != string(data) {
				t.Fatalf("%s on %s after the leader was killed: %d, or other bytes", name, id, status)
			}
		}
	}
}

// opensslVerifies checks an export.bin's signature as another verifier
// does, OpenSSL: ECDSA P-256 over the SHA-256 of the whole export.bin.
func opensslVerifies(t *testing.T, pub *ecdsa.PublicKey, bin, sig []byte) {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "export.bin": bin, "export.sig.der": sig}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", filepath.Join(dir, "pub.pem"), "-signature",
		filepath.Join(dir, "export.sig.der"), filepath.Join(dir, "export.bin")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("OpenSSL does not verify the HSM's signature: %v %s", err, out)
	}
}

// BenchmarkSealToListed is what keeping the export key in an HSM costs a
// batch: from the seal's answer to its file listed in batches.txt on
// every node of 3, with the key in a PEM file (every node signs, the same
// bytes) and in SoftHSM2 (the leader signs once, SIGN_FILES replicates);
// the median of 10 seals.
//
//	go test -run XXX -bench BenchmarkSealToListed -benchtime 1x ./cluster-test/
func BenchmarkSealToListed(b *testing.B) {
	for _, kind := range []string{"pem", "hsm"} {
		b.Run(kind, func(b *testing.B) {
			var c *cluster
			if kind == "hsm" {
				c, _, _ = hsmRegion(b)
			} else {
				_, flags := exportKey(b, b.TempDir())
				c = newCluster(b, append(flags, "--seal-interval", "1h", "--seal-min-keys", "50")...)
				c.form(3)
			}
			leader := c.waitLeader(20*time.Second, c.ids(3)...)
			for range b.N {
				var took []time.Duration
				for i := 1; i <= 10; i++ {
					if _, err := c.upload(c.node(leader).url()); err != nil {
						b.Fatal(err)
					}
					c.adminPost(leader, "/v1/admin/seal")
					start := time.Now()
					for listed := 0; listed < 3; time.Sleep(2 * time.Millisecond) { // finer than waitFor's 50 ms
						if time.Since(start) > 20*time.Second {
							b.Fatalf("batch %d not listed everywhere after 20 s", i)
						}
						listed = 0
						for _, id := range c.ids(3) {
							if _, list, _, err := c.tryGet(id, "/v1/exports/batches.txt"); err == nil && len(strings.Fields(string(list))) >= i {
								listed++
							}
						}
					}
					took = append(took, time.Since(start))
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-seal-to-listed")
			}
		})
	}
}
