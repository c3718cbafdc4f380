package clustertest

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
)

// Region B imports region A's export files over HTTPS as it would any GAEN
// key server's (trust add-gaen): B's leader reads A's batches.txt through
// a relay, checks each file's signature by A's export key and merges the
// keys; B's three nodes then serve them in B's own files, signed by B's
// key and byte-identical on every node. A file altered on the way is
// refused and counted, and none of its keys is kept; a file imported is
// never fetched again.
func TestGAENImportFromAnotherServer(t *testing.T) {
	keyA, flagsA := exportKey(t, t.TempDir())
	a := newRegion(t, "A", append(flagsA, "--seal-interval", "1h", "--seal-min-keys", "20")...)
	acked := &ackSet{}
	for range 3 {
		keys, err := a.upload(a.node("n1").url())
		if err != nil {
			t.Fatal(err)
		}
		acked.add(keys)
	}
	a.adminPost("n1", "/v1/admin/seal")
	_, index, _ := a.get("n1", "/v1/exports/batches.txt")
	names := strings.Fields(string(index))
	if len(names) != 1 {
		t.Fatalf("A lists %q, want one batch file", index)
	}
	_, original, _ := a.get("n1", "/"+names[0])

	// The relay serves A's files as they are, and one more under a name of
	// its own: A's file with one key changed.
	tampered, altered := tamperExport(t, original)
	var mu sync.Mutex
	fetched := map[string]int{}
	count := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return fetched[path]
	}
	relay := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fetched[r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/exports/batches.txt":
			w.Write(append(index, []byte("\nv1/exports/tampered-00001.zip\n")...))
		case "/v1/exports/tampered-00001.zip":
			w.Write(tampered)
		default:
			status, body, _, err := a.tryGet("n1", r.URL.Path)
			if err != nil {
				status = http.StatusBadGateway
			}
			w.WriteHeader(status)
			w.Write(body)
		}
	}))
	defer relay.Close()
	dir := t.TempDir()
	caFile, pubFile := filepath.Join(dir, "relay-ca.pem"), filepath.Join(dir, "a-export.pub.pem")
	writeFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: relay.Certificate().Raw}))
	der, _ := x509.MarshalPKIXPublicKey(&keyA.PublicKey)
	writeFile(t, pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	keyB, flagsB := exportKey(t, t.TempDir())
	b := newCluster(t, append(flagsB, "--seal-interval", "1s", "--seal-min-keys", "20", "--gaen-ca-file", caFile)...)
	b.region = "B"
	b.form(3)
	b.cli("trust", "add-gaen", "--addr", b.node("n2").url(), "--origin", "A", "--index-url", relay.URL+"/v1/exports/batches.txt",
		"--export-root", relay.URL, "--key", "test:v1:"+pubFile, "--poll", "10s")

	// B's files hold every key A acknowledged, signed by B, the same bytes
	// on every node of B.
	want := acked.snapshot()
	var files map[string][]byte
	b.waitFor("A's keys in B's files on every node", 60*time.Second, func() bool {
		files = map[string][]byte{}
		var held map[string]bool
		for _, id := range b.ids(3) {
			got, keys := b.exportFiles(t, id)
			if held == nil {
				files, held = got, keys
			} else if !sameFiles(files, got) {
				return false
			}
		}
		for _, k := range want {
			if !held[k] {
				return false
			}
		}
		return true
	})
	for name, data := range files {
		d, err := export.Decode(data)
		if err != nil {
			t.Fatalf("B's %s: %v", name, err)
		}
		if err := d.Verify(&keyB.PublicKey, "test", "v1"); err != nil {
			t.Fatalf("B's %s is not signed by B: %v", name, err)
		}
		if d.Verify(&keyA.PublicKey, "test", "v1") == nil {
			t.Fatalf("B's %s verifies under A's key", name)
		}
	}
	for _, id := range b.ids(3) {
		if held, err := b.keysOn(id); err != nil || held[altered] {
			t.Fatalf("%s holds the altered key (%v)", id, err)
		}
	}
	var fed struct {
		GAENSources []struct {
			Origin        string `json:"origin"`
			FilesImported int    `json:"files_imported"`
		} `json:"gaen_sources"`
	}
	_, body, _ := b.tryAdminGet("n1", "/v1/admin/federation")
	if err := json.Unmarshal(body, &fed); err != nil || len(fed.GAENSources) != 1 || fed.GAENSources[0].FilesImported != 1 {
		t.Fatalf("B's GAEN sources: %s (%v)", body, err)
	}
	leader := b.leaderAmong(b.ids(3)...)
	_, metrics, _ := b.tryAdminGet(leader, "/metrics")
	if !strings.Contains(string(metrics), `covid_gaen_import_files_total{origin="A",outcome="bad_signature"} 1`) ||
		!strings.Contains(string(metrics), `covid_gaen_import_files_total{origin="A",outcome="imported"} 1`) {
		t.Fatalf("the leader's counts of A's files:\n%s", grepLines(string(metrics), "covid_gaen_import"))
	}
	b.waitFor("a second poll of A's index", 30*time.Second, func() bool { return count("/v1/exports/batches.txt") >= 2 })
	if n, m := count("/"+names[0]), count("/v1/exports/tampered-00001.zip"); n != 1 || m != 1 {
		t.Fatalf("A's file fetched %d times, the altered one %d, want once each", n, m)
	}
}

// tamperExport changes one byte of the first key of an export file and
// zips it again with its signature; it returns the file and the altered
// key in base64.
func tamperExport(t *testing.T, data []byte) ([]byte, string) {
	t.Helper()
	d, err := export.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	first := d.File.Keys[0].Data
	at := bytes.Index(d.Bin, first[:])
	if at < 0 {
		t.Fatal("key not found in export.bin")
	}
	d.Bin[at] ^= 0xff
	first[0] ^= 0xff
	out, err := export.Zip(d.Bin, d.Sig)
	if err != nil {
		t.Fatal(err)
	}
	return out, base64.StdEncoding.EncodeToString(first[:])
}

// exportKeysOf lists an export file's keys in base64, as uploads name
// them.
func exportKeysOf(t *testing.T, data []byte) []string {
	t.Helper()
	d, err := export.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range d.File.Keys {
		out = append(out, base64.StdEncoding.EncodeToString(k.Data[:]))
	}
	return out
}

// exportFiles fetches every file a node lists in batches.txt, and the keys
// they hold.
func (c *cluster) exportFiles(t *testing.T, id string) (map[string][]byte, map[string]bool) {
	t.Helper()
	files, keys := map[string][]byte{}, map[string]bool{}
	status, index, _, err := c.tryGet(id, "/v1/exports/batches.txt")
	if err != nil || status != http.StatusOK {
		return files, keys
	}
	for _, name := range strings.Fields(string(index)) {
		status, data, _, err := c.tryGet(id, "/"+name)
		if err != nil || status != http.StatusOK {
			return map[string][]byte{}, map[string]bool{}
		}
		files[name] = data
		for _, k := range exportKeysOf(t, data) {
			keys[k] = true
		}
	}
	return files, keys
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			return false
		}
	}
	return true
}
