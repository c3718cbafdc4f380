package clustertest

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/covid-backend/covid-backend/membertls"
)

// strangerLayer is a raft stream layer for a client that is not a member:
// plain TCP, or TLS with a certificate of another CA.
type strangerLayer struct {
	net.Listener
	tls *tls.Config
}

func (s *strangerLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(addr))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return (&tls.Dialer{NetDialer: &d, Config: s.tls}).DialContext(ctx, "tcp", string(addr))
}

func (s *strangerLayer) Addr() net.Addr { return s.Listener.Addr() }

// strangerListener is the address a stranger's raft transport names as
// its own; it closes with the test.
func strangerListener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// attack sends a node the two RPCs that take a raft group over: TimeoutNow
// (start an election now) and AppendEntries with a higher term.
func attack(t *testing.T, layer *strangerLayer, addr string, term uint64) []error {
	t.Helper()
	trans := raft.NewNetworkTransport(layer, 1, 2*time.Second, nil)
	defer trans.Close()
	header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("stranger"), Addr: []byte(layer.Addr().String())}
	target := raft.ServerAddress(addr)
	var tn raft.TimeoutNowResponse
	var ae raft.AppendEntriesResponse
	return []error{
		trans.TimeoutNow("n1", target, &raft.TimeoutNowRequest{RPCHeader: header}, &tn),
		trans.AppendEntries("n1", target, &raft.AppendEntriesRequest{RPCHeader: header, Term: term + 100, Leader: []byte(layer.Addr().String())}, &ae),
	}
}

// terms reads the raft term of the given nodes (all three when none).
func terms(t *testing.T, c *cluster, ids ...string) map[string]uint64 {
	if len(ids) == 0 {
		ids = c.ids(3)
	}
	out := map[string]uint64{}
	for _, id := range ids {
		st, err := c.status(id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = st.Term
	}
	return out
}

// Raft runs over mutual TLS: a stranger speaking plain raft, or TLS with a
// certificate of another CA, to every raft port of a region is dropped
// before its RPC is read, and no node's term moves. Without TLS the same
// RPCs force an election, which shows the attack is real.
func TestStrangerCannotSpeakRaft(t *testing.T) {
	other, err := membertls.NewCA("elsewhere", membertls.Ed25519, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherNode, err := membertls.NewNode(other, membertls.NodeRequest{ID: "n1", IPs: []net.IP{net.ParseIP("127.0.0.1")}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := membertls.FromPEM(other.Cert, otherNode)
	if err != nil {
		t.Fatal(err)
	}
	l := strangerListener(t)

	c := newCluster(t)
	c.form(3)
	ghost := c.regionCert("ghost") // of the region's own CA, for a node never added
	before := terms(t, c)
	for _, id := range c.ids(3) {
		addr := c.node(id).ip + ":7000"
		for name, layer := range map[string]*strangerLayer{
			"plain TCP":               {Listener: l},
			"another region CA":       {Listener: l, tls: creds.ClientConfig(addr, membertls.ProtoRaft)},
			"region CA, not a member": {Listener: l, tls: ghost.ClientConfig(addr, membertls.ProtoRaft)},
		} {
			for _, err := range attack(t, layer, addr, before[id]) {
				if err == nil {
					t.Fatalf("%s: an RPC to %s was answered", name, id)
				}
			}
		}
	}
	// Member HTTP is on the member port too: the admin token makes no one a
	// member on the API port, and without a certificate of the region CA
	// there is no HTTPS to the member port.
	req, _ := http.NewRequest(http.MethodPost, c.node("n2").url()+"/internal/v2/apply-batch", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+c.token)
	if resp, err := c.client.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("forwarding on the API port with the admin token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	stranger := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, NextProtos: []string{membertls.ProtoMember}}}}
	if resp, err := stranger.Post("https://"+c.node("n2").ip+":7000/internal/v2/apply", "application/x-protobuf", strings.NewReader("x")); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %d from the member port", resp.StatusCode)
	}
	c.assertNotMember(ghost, "n2", "")
	// The RPCs failed at once; a region that had taken them would start an
	// election within an election timeout: give it five.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if after := terms(t, c); !equalTerms(after, before) {
			t.Fatalf("terms moved from %v to %v", before, after)
		}
		time.Sleep(100 * time.Millisecond)
	}

	plain := newCluster(t)
	plain.insecure = true
	plain.form(3)
	leader := plain.waitLeader(10*time.Second, plain.ids(3)...)
	was := terms(t, plain)[leader]
	follower := without(plain.ids(3), leader)[0]
	attack(t, &strangerLayer{Listener: l}, plain.node(follower).ip+":7000", was)
	plain.waitFor("the stranger's TimeoutNow to force an election in the plaintext region", 10*time.Second, func() bool {
		st, err := plain.status(follower)
		return err == nil && st.Term > was
	})
}

func equalTerms(a, b map[string]uint64) bool {
	for id, t := range a {
		if b[id] != t {
			return false
		}
	}
	return len(a) == len(b)
}

// regionCert makes a node certificate of the cluster's own region CA for id
// (as an operator's `certs node` does) and loads it.
func (c *cluster) regionCert(id string) *membertls.Credentials {
	c.t.Helper()
	dir := filepath.Join(c.dir, "certs")
	if out, err := exec.Command(binary, "certs", "node", "--dir", dir, "--id", id, "--ip", "127.0.0.1").CombinedOutput(); err != nil {
		c.t.Fatalf("certs node --id %s: %v\n%s", id, err, out)
	}
	return c.memberCreds(id)
}

// memberCreds loads the member credential the cluster made for id.
func (c *cluster) memberCreds(id string) *membertls.Credentials {
	c.t.Helper()
	dir := filepath.Join(c.dir, "certs")
	creds, err := membertls.Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, id+".pem"), filepath.Join(dir, id+".key"))
	if err != nil {
		c.t.Fatal(err)
	}
	return creds
}

// assertNotMember checks that a holder of creds, a certificate of the
// region CA whose node is no member, gets nothing from the member port of
// node at: no forwarded write, no read index, no clock (403), and no join
// or removal without the region's admin token (401); token is the bearer
// it sends ("" none).
func (c *cluster) assertNotMember(creds *membertls.Credentials, at, token string) {
	c.t.Helper()
	addr := c.node(at).ip + ":7000"
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: creds.ClientConfig(addr, membertls.ProtoMember), ForceAttemptHTTP2: false}}
	defer client.CloseIdleConnections()
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, "/internal/v2/apply-batch", "x", http.StatusForbidden},
		{http.MethodGet, "/internal/v1/read-index", "", http.StatusForbidden},
		{http.MethodGet, "/internal/v1/clock", "", http.StatusForbidden},
		{http.MethodPost, "/v1/admin/members", `{"id":"ghost","raft_addr":"127.0.0.1:7000","http_addr":"127.0.0.1:8080","region":"test"}`, http.StatusUnauthorized},
		{http.MethodDelete, "/v1/admin/members/n1", "", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(tc.method, "https://"+addr+tc.path, strings.NewReader(tc.body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			c.t.Fatalf("%s %s on %s: %v", tc.method, tc.path, at, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			c.t.Fatalf("%s %s on %s with a non-member's certificate: %d %s, want %d", tc.method, tc.path, at, resp.StatusCode, b, tc.want)
		}
	}
}

// A member removed by an operator keeps a certificate of the region CA
// that is valid for years; from then on it moves nothing: its raft RPCs
// are not read and the member port answers it only with refusals.
func TestRemovedMemberCertificateIsRefused(t *testing.T) {
	l := strangerListener(t)
	c := newCluster(t)
	c.form(3)
	c.stop("n3")
	c.cli("members", "remove", "--addr", c.node("n1").url(), "--id", "n3")
	c.waitFor("n3 to leave the configuration of n1 and n2", 15*time.Second, func() bool {
		for _, id := range []string{"n1", "n2"} {
			if st, err := c.status(id); err != nil || len(st.Members) != 2 {
				return false
			}
		}
		return true
	})
	assertMovesNothing(t, c, l, c.memberCreds("n3"), "the removed n3's certificate", "n1", "n2")
}

// A node whose certificate is renewed (or that is replaced under the same
// id) records its new certificate; from then on the old one, which stays
// valid for years, moves nothing: its raft RPCs are not read and member
// HTTP refuses it. The node itself goes on with its new certificate.
func TestRenewedCertificateLeavesTheOldOneBehind(t *testing.T) {
	l := strangerListener(t)
	c := newCluster(t)
	c.form(3)
	old := c.memberCreds("n3")
	c.stop("n3")
	// Certificates start on the second (an hour back): the renewed one
	// must start after the old one to be told apart from it.
	c.waitFor("a second after n3's certificate was made", 5*time.Second, func() bool {
		return time.Now().Add(-time.Hour).Unix() > old.Leaf.NotBefore.Unix()
	})
	dir := filepath.Join(c.dir, "certs")
	for _, f := range []string{"n3.pem", "n3.key"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	c.start(3) // the harness makes n3 a new certificate
	c.waitReady("n3")
	c.waitFor("n1 to refuse n3's old certificate", 20*time.Second, func() bool {
		return c.memberStatus(old, "n1", http.MethodGet, "/internal/v1/clock") == http.StatusForbidden
	})
	before := terms(t, c, "n1", "n2")
	for _, id := range []string{"n1", "n2"} {
		addr := c.node(id).ip + ":7000"
		for _, err := range attack(t, &strangerLayer{Listener: l, tls: old.ClientConfig(addr, membertls.ProtoRaft)}, addr, before[id]) {
			if err == nil {
				t.Fatalf("an RPC with n3's old certificate to %s was answered", id)
			}
		}
		c.assertNotMember(old, id, "")
	}
	if _, err := c.upload(c.node("n3").url()); err != nil {
		t.Fatalf("an upload through n3 with its new certificate: %v", err)
	}
}

// memberStatus sends one member-port request with creds and returns the
// status (0 when the connection failed).
func (c *cluster) memberStatus(creds *membertls.Credentials, at, method, path string) int {
	addr := c.node(at).ip + ":7000"
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: creds.ClientConfig(addr, membertls.ProtoMember)}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(method, "https://"+addr+path, nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A certificate revoked in the region moves nothing, though it names a
// member and is newer than the member's own (a renewal that leaked before
// it was deployed, which certificate pinning alone would take): after
// `certs revoke` its raft RPCs are not read and member HTTP refuses it on
// every node, while the member goes on with its own certificate.
func TestRevokedCertificateIsRefused(t *testing.T) {
	l := strangerListener(t)
	c := newCluster(t)
	c.form(3)
	own := c.memberCreds("n3")
	c.waitFor("a second after n3's certificate was made", 5*time.Second, func() bool {
		return time.Now().Add(-time.Hour).Unix() > own.Leaf.NotBefore.Unix()
	})
	spare, spareFile := c.spareCert("n3")
	c.waitFor("n1 to take n3's newer certificate (pinning takes renewals)", 10*time.Second, func() bool {
		return c.memberStatus(spare, "n1", http.MethodGet, "/internal/v1/clock") == http.StatusOK
	})
	c.cli("certs", "revoke", "--addr", c.node("n1").url(), "--cert", spareFile, "--reason", "leaked before it was deployed")
	for _, id := range []string{"n1", "n2"} {
		c.waitFor(id+" to refuse the revoked certificate", 10*time.Second, func() bool {
			return c.memberStatus(spare, id, http.MethodGet, "/internal/v1/clock") == http.StatusForbidden
		})
	}
	assertMovesNothing(t, c, l, spare, "the revoked certificate", "n1", "n2")
	if _, err := c.upload(c.node("n3").url()); err != nil {
		t.Fatalf("an upload through n3 with its own certificate: %v", err)
	}
}

// spareCert makes another certificate of the region CA for id, in a
// folder of its own (the node's files stay), and returns it with its file.
func (c *cluster) spareCert(id string) (*membertls.Credentials, string) {
	c.t.Helper()
	dir := c.t.TempDir()
	for _, f := range []string{"ca.pem", "ca.key"} {
		b, err := os.ReadFile(filepath.Join(c.dir, "certs", f))
		if err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
	if out, err := exec.Command(binary, "certs", "node", "--dir", dir, "--id", id, "--ip", c.node(id).ip).CombinedOutput(); err != nil {
		c.t.Fatalf("certs node --id %s: %v\n%s", id, err, out)
	}
	creds, err := membertls.Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, id+".pem"), filepath.Join(dir, id+".key"))
	if err != nil {
		c.t.Fatal(err)
	}
	return creds, filepath.Join(dir, id+".pem")
}

// assertMovesNothing checks that creds, a certificate of the region CA
// that makes no member, moves nothing at the nodes ids: its raft RPCs go
// unanswered, the terms stay, and member HTTP refuses it (what names it
// in a failure).
func assertMovesNothing(t *testing.T, c *cluster, l net.Listener, creds *membertls.Credentials, what string, ids ...string) {
	t.Helper()
	before := terms(t, c, ids...)
	for _, id := range ids {
		addr := c.node(id).ip + ":7000"
		for _, err := range attack(t, &strangerLayer{Listener: l, tls: creds.ClientConfig(addr, membertls.ProtoRaft)}, addr, before[id]) {
			if err == nil {
				t.Fatalf("an RPC with %s to %s was answered", what, id)
			}
		}
		c.assertNotMember(creds, id, "")
	}
	if after := terms(t, c, ids...); !equalTerms(after, before) {
		t.Fatalf("terms moved from %v to %v", before, after)
	}
}
