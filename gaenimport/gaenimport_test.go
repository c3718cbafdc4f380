package gaenimport_test

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
	"github.com/covid-backend/covid-backend/gaenimport"
)

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/gaen/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// source is a GAEN key server as a test serves it: files by path, and how
// often each path was fetched.
type source struct {
	mu      sync.Mutex
	files   map[string][]byte
	fetched map[string]int
}

func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetched[r.URL.Path]++
	data, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(data)
}

func (s *source) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetched[path]
}

// The reference key server's three files of 250 keys are imported from
// its index under their signature; a tampered file is refused and
// counted; names that leave the export root are never fetched; a second
// poll fetches only the index.
func TestImportFromAnIndex(t *testing.T) {
	names := []string{"exposureKeyExport-US/1.zip", "exposureKeyExport-US/2.zip", "exposureKeyExport-US/3.zip"}
	src := &source{files: map[string][]byte{}, fetched: map[string]int{}}
	var end time.Time
	for i, name := range names {
		data := readGolden(t, []string{"generated-250-1-of-3.zip", "generated-250-2-of-3.zip", "generated-250-3-of-3.zip"}[i])
		d, err := export.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if d.File.End.After(end) {
			end = d.File.End
		}
		src.files["/root/"+name] = data
	}
	tampered := append([]byte(nil), src.files["/root/"+names[0]]...)
	d, _ := export.Decode(tampered)
	d.Bin[len(d.Bin)-30] ^= 1
	tampered, err := export.Zip(d.Bin, d.Sig)
	if err != nil {
		t.Fatal(err)
	}
	src.files["/root/exposureKeyExport-US/tampered.zip"] = tampered
	index := strings.Join(append(names, "exposureKeyExport-US/tampered.zip", "../secret.zip", "https://elsewhere.example/x.zip", ""), "\n")
	src.files["/root/index.txt"] = []byte(index)
	ts := httptest.NewServer(src)
	defer ts.Close()

	now := end.Add(time.Hour)
	region := fsmtest.New(func() time.Time { return now })
	pub, err := export.ParsePublicKeyPEM(readGolden(t, "export-key-310-v1.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	err = command.PutTrust(context.Background(), region, &fsmpb.TrustedRegion{Region: "US", Kind: fsm.TrustGAENExport, Merge: true,
		Gaen: &fsmpb.GAENSource{IndexUrl: ts.URL + "/root/index.txt", ExportRoot: ts.URL + "/root", PollSeconds: 60,
			Keys: []*fsmpb.ExportKey{{KeyId: "310", KeyVersion: "v1", PublicKeyDer: der}}}})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	im := gaenimport.New(ts.Client(), true, slog.New(slog.NewTextHandler(io.Discard, nil)), func(origin, outcome string) { outcomes[origin+" "+outcome]++ })
	if n := im.Poll(context.Background(), region.State, region, now); n != 3 {
		t.Fatalf("first poll imported %d files, want 3 (%v)", n, outcomes)
	}
	if keys := len(region.State.Keys(nil)); keys != 250 {
		t.Fatalf("%d keys held, want 250", keys)
	}
	want := map[string]int{"US imported": 3, "US bad_signature": 1, "US bad_name": 2}
	for k, v := range want {
		if outcomes[k] != v {
			t.Fatalf("outcomes %v, want %v", outcomes, want)
		}
	}
	if src.count("/secret.zip")+src.count("/x.zip") != 0 {
		t.Fatal("a name outside the export root was fetched")
	}
	if n := im.Poll(context.Background(), region.State, region, now.Add(30*time.Second)); n != 0 || src.count("/root/index.txt") != 1 {
		t.Fatalf("a poll before the interval read the index (%d) or imported %d", src.count("/root/index.txt"), n)
	}
	if n := im.Poll(context.Background(), region.State, region, now.Add(2*time.Minute)); n != 0 {
		t.Fatalf("second poll imported %d", n)
	}
	for _, p := range []string{"/root/" + names[0], "/root/" + names[1], "/root/" + names[2], "/root/exposureKeyExport-US/tampered.zip"} {
		if c := src.count(p); c != 1 {
			t.Fatalf("%s fetched %d times, want once", p, c)
		}
	}
	if c := src.count("/root/index.txt"); c != 2 {
		t.Fatalf("index read %d times, want 2", c)
	}
}
