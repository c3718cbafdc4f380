package membertls

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func region(t *testing.T, alg Algorithm) (PEM, *Credentials, *Credentials) {
	t.Helper()
	now := time.Now()
	ca, err := NewCA("r1", alg, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	var creds []*Credentials
	for _, id := range []string{"n1", "n2"} {
		node, err := NewNode(ca, NodeRequest{ID: id, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Alg: alg}, now)
		if err != nil {
			t.Fatal(err)
		}
		c, err := FromPEM(ca.Cert, node)
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, c)
	}
	return ca, creds[0], creds[1]
}

// handshake connects client to a server with the given configs and
// returns the error of the handshake on each side.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- tls.Server(a, server).Handshake(); a.Close() }()
	clientErr = tls.Client(b, client).Handshake()
	b.Close()
	return <-done, clientErr
}

// Two members of a region complete a mutual TLS 1.3 handshake, for both
// key types; a member of another region, or a client without a
// certificate, does not.
func TestMutualTLS(t *testing.T) {
	for _, alg := range []Algorithm{Ed25519, P256} {
		t.Run(string(alg), func(t *testing.T) {
			_, n1, n2 := region(t, alg)
			_, stranger, _ := region(t, alg)
			if s, c := handshake(t, n1.ServerConfig(ProtoRaft), n2.ClientConfig("127.0.0.1:7000", ProtoRaft)); s != nil || c != nil {
				t.Fatalf("members: server %v, client %v", s, c)
			}
			if s, _ := handshake(t, n1.ServerConfig(ProtoRaft), stranger.ClientConfig("127.0.0.1:7000", ProtoRaft)); s == nil {
				t.Fatal("a member of another region was accepted")
			}
			noCert := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{ProtoRaft}}
			if s, _ := handshake(t, n1.ServerConfig(ProtoRaft), noCert); s == nil {
				t.Fatal("a client without a certificate was accepted")
			}
			if _, c := handshake(t, stranger.ServerConfig(ProtoRaft), n1.ClientConfig("127.0.0.1:7000", ProtoRaft)); c == nil {
				t.Fatal("a member accepted a server of another region")
			}
			if _, c := handshake(t, n2.ServerConfig(ProtoRaft), n1.ClientConfig("127.0.0.2:7000", ProtoRaft)); c == nil {
				t.Fatal("a member accepted a certificate that does not name the address it dialed")
			}
		})
	}
}

// A key file others may read is refused; a node certificate of another CA
// does not load.
func TestLoadChecks(t *testing.T) {
	ca, _, _ := region(t, Ed25519)
	other, _, _ := region(t, Ed25519)
	node, err := NewNode(other, NodeRequest{ID: "n1", IPs: []net.IP{net.ParseIP("127.0.0.1")}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile := write("ca.pem", ca.Cert, 0o644), write("n1.pem", node.Cert, 0o644)
	if _, err := Load(caFile, certFile, write("open.key", node.Key, 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("key of mode 0644: %v", err)
	}
	if _, err := Load(caFile, certFile, write("n1.key", node.Key, 0o600)); err == nil {
		t.Fatal("a node certificate of another CA loaded")
	}
}
