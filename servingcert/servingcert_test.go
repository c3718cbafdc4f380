package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/membertls"
)

// issue writes a new certificate for 127.0.0.1 from ca to the two files.
func issue(t *testing.T, ca membertls.PEM, certFile, keyFile string) {
	t.Helper()
	p, err := membertls.NewNode(ca, membertls.NodeRequest{ID: "api", IPs: []net.IP{net.ParseIP("127.0.0.1")}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, p.Cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, p.Key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A reload serves the new certificate to new connections while an open
// connection goes on with the one it has, over HTTP/2; a bad pair leaves
// the certificate in use; a key readable by others is refused.
func TestReloadKeepsConnections(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key")
	ca, err := membertls.NewCA("test", membertls.Ed25519, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issue(t, ca, certFile, keyFile)
	c, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := c.Leaf().SerialNumber
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: c.ServerConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })}
	go srv.ServeTLS(l, "", "") // as the node serves: HTTP/2 from net/http
	defer srv.Close()
	url := "https://" + l.Addr().String()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.Cert)
	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	}
	serial := func(cl *http.Client) string {
		t.Helper()
		resp, err := cl.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	open := client()
	if got := serial(open); got != first.String() {
		t.Fatalf("serving %s, want %s", got, first)
	}
	issue(t, ca, certFile, keyFile)
	if !c.changed() {
		t.Fatal("new files not seen as changed")
	}
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	second := c.Leaf().SerialNumber.String()
	if second == first.String() {
		t.Fatal("reload kept the old certificate")
	}
	if got := serial(client()); got != second {
		t.Fatalf("a new connection gets %s, want the new %s", got, second)
	}
	if got := serial(open); got != first.String() {
		t.Fatalf("the open connection now reports %s: it was dropped and redialed", got)
	}

	other := filepath.Join(dir, "other.key")
	issue(t, ca, filepath.Join(dir, "other.pem"), other)
	key, _ := os.ReadFile(other)
	os.WriteFile(keyFile, key, 0o600) // a key that does not match the certificate
	if err := c.Reload(); err == nil {
		t.Fatal("a mismatched pair was loaded")
	}
	if got := serial(client()); got != second {
		t.Fatalf("after a failed reload serving %s, want %s", got, second)
	}
	os.Chmod(keyFile, 0o644)
	if _, err := Load(certFile, keyFile); err == nil {
		t.Fatal("a key readable by others was accepted")
	}
}

// Watch reloads when the files change, without a signal.
func TestWatchSeesChangedFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key")
	ca, _ := membertls.NewCA("test", membertls.P256, time.Hour, time.Now())
	issue(t, ca, certFile, keyFile)
	c, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := c.Leaf().SerialNumber.String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Watch(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	issue(t, ca, certFile, keyFile)
	// Same-second writes can leave the modification time equal on coarse
	// file systems: move it on explicitly.
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, later, later)
	deadline := time.Now().Add(10 * time.Second)
	for c.Leaf().SerialNumber.String() == first {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not reload changed files")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
