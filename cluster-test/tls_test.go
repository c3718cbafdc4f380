package clustertest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
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

func terms(t *testing.T, c *cluster) map[string]uint64 {
	out := map[string]uint64{}
	for _, id := range c.ids(3) {
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	c := newCluster(t)
	c.form(3)
	before := terms(t, c)
	for _, id := range c.ids(3) {
		addr := c.node(id).ip + ":7000"
		for name, layer := range map[string]*strangerLayer{
			"plain TCP":         {Listener: l},
			"another region CA": {Listener: l, tls: creds.ClientConfig(addr, membertls.ProtoRaft)},
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
