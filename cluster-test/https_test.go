package clustertest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The app and admin API over HTTPS with HTTP/2: plain HTTP gets nothing but
// an error, operators' commands work with the CA file, and a new
// certificate put in place and announced with SIGHUP is served to new
// connections while an open one goes on.
func TestHTTPSServesAndReloads(t *testing.T) {
	c := newCluster(t)
	web := filepath.Join(c.dir, "web")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("covid-node %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("certs", "ca", "--dir", web, "--region", "web")
	run("certs", "node", "--dir", web, "--id", "api", "--ip", c.ip(1))
	p := c.start(1, "--bootstrap", "--https-cert-file", filepath.Join(web, "api.pem"), "--https-key-file", filepath.Join(web, "api.key"))
	pem, err := os.ReadFile(filepath.Join(web, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	newClient := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	}
	base := "https://" + p.ip + ":8080"
	serial := func(cl *http.Client) (string, bool) {
		resp, err := cl.Get(base + "/readyz")
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s over HTTPS, want HTTP/2", resp.Proto)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), resp.StatusCode == http.StatusOK
	}
	open := newClient()
	c.waitFor("n1 ready over HTTPS", 30*time.Second, func() bool { _, ok := serial(open); return ok })
	first, _ := serial(open)

	if resp, err := http.Get("http://" + p.ip + ":8080/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the HTTPS port: %d, want 400", resp.StatusCode)
		}
	}
	out := run("policy", "show", "--addr", base, "--ca-file", filepath.Join(web, "ca.pem"), "--token-file", c.tokenFile)
	if !strings.Contains(out, "retention") {
		t.Fatalf("policy show over HTTPS: %s", out)
	}

	// Renew: a new pair written beside, renamed into place, then SIGHUP.
	run("certs", "node", "--dir", web, "--id", "api-renewed", "--ip", c.ip(1))
	for _, ext := range []string{".key", ".pem"} {
		if err := os.Rename(filepath.Join(web, "api-renewed"+ext), filepath.Join(web, "api"+ext)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	c.waitFor("new connections to get the renewed certificate", 10*time.Second, func() bool {
		s, ok := serial(newClient())
		return ok && s != first
	})
	if s, ok := serial(open); !ok || s != first {
		t.Fatalf("the connection open before the renewal: ok=%v serial %s, want it to go on with %s", ok, s, first)
	}
	if !c.logContains("n1", "https certificate reloaded") {
		t.Fatal("the reload is not logged")
	}
}
