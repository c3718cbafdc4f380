package clustertest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// newRegion is a one-node region with its own name, token and address.
func newRegion(t testing.TB, name string, extra ...string) *cluster {
	c := newCluster(t, extra...)
	c.region = name
	c.form(1)
	return c
}

// A's batch travels byte for byte: B takes it from A, C takes it from B
// while A is down, and every copy equals A's own; a batch re-signed by a
// key that is not A's is refused.
func TestFederationRelayByHand(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "a")
	if out, err := exec.Command(binary, "keygen", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	a := newRegion(t, "A", "--signing-key-file", prefix+".key", "--signing-key-id", "a1")
	b, c := newRegion(t, "B"), newRegion(t, "C")
	for _, r := range []*cluster{b, c} {
		r.cli("trust", "add", "--addr", r.node("n1").url(), "--region", "A", "--key-id", "a1", "--public-key-file", prefix+".pub.pem")
	}
	if _, err := a.upload(a.node("n1").url()); err != nil {
		t.Fatal(err)
	}
	a.adminPost("n1", "/v1/admin/seal")
	status, original, _ := a.get("n1", "/v1/federation/batches/A/1")
	if status != http.StatusOK {
		t.Fatalf("A's own batch: %d", status)
	}
	b.cli("federation", "import", "--addr", b.node("n1").url(), "--from", a.node("n1").url(), "--origin", "A", "--seq", "1")
	a.kill9("n1")
	c.cli("federation", "import", "--addr", c.node("n1").url(), "--from", b.node("n1").url(), "--origin", "A", "--seq", "1")
	for _, r := range []*cluster{b, c} {
		_, got, _ := r.get("n1", "/v1/federation/batches/A/1")
		if !bytes.Equal(got, original) {
			t.Fatalf("region %s serves A's batch 1 altered", r.region)
		}
	}
	if out := b.cli("federation", "import", "--addr", b.node("n1").url(), "--from", c.node("n1").url(), "--origin", "A", "--seq", "1"); !strings.Contains(out, `"duplicate":true`) {
		t.Fatalf("second import: %s", out)
	}

	// A forger with its own key claims A's batch.
	var sb fsmpb.SignedBatch
	if err := proto.Unmarshal(original, &sb); err != nil {
		t.Fatal(err)
	}
	forgedPriv, _, _ := federation.GenerateKey()
	forgedFile := filepath.Join(dir, "forger.key")
	writeFile(t, forgedFile, forgedPriv)
	forger, err := federation.LoadKey(forgedFile, "a1")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forger.Sign(sb.GetBody(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, c.node("n1").url()+"/v1/admin/federation/import", bytes.NewReader(forged))
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var refusal struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&refusal)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || refusal.Code != "bad_signature" {
		t.Fatalf("forged batch: %d %+v", resp.StatusCode, refusal)
	}
	c.waitFor("C's status to show A's one batch", 5*time.Second, func() bool {
		_, b, _ := c.get("n1", "/v1/federation")
		return bytes.Contains(b, []byte(`"origin":"A","first_seq":1,"last_seq":1,"batches":1`))
	})
}
