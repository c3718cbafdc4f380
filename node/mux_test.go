package node

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/membertls"
)

// memberCreds makes a region CA and a member credential of it.
func memberCreds(t *testing.T, id string) *membertls.Credentials {
	t.Helper()
	ca, err := membertls.NewCA("r1", membertls.Ed25519, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := membertls.NewNode(ca, membertls.NodeRequest{ID: id, IPs: []net.IP{net.ParseIP("127.0.0.1")}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := membertls.FromPEM(ca.Cert, pem)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// startMux serves a member port on loopback with creds until the test ends.
func startMux(t *testing.T, creds *membertls.Credentials) (*memberMux, net.Listener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMemberMux(l, creds)
	t.Cleanup(func() { m.Close() })
	return m, l
}

// One address that opens idle connections by the hundred (issue 21,
// finding 8: 256 slots of 5 s each, all taken from one address) holds at
// most maxHandshakesPerIP of them, and each only until silentTimeout: a
// member from another address still gets through at once, and the idle
// connections are closed by the node.
func TestIdleStrangerLeavesHandshakeSlots(t *testing.T) {
	creds := memberCreds(t, "n1")
	m, l := startMux(t, creds)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range maxHandshakes + 44 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", l.Addr().String(), creds.ClientConfig(l.Addr().String(), membertls.ProtoMember))
	if err != nil {
		t.Fatalf("a member's handshake while one address holds %d idle connections: %v", len(idle), err)
	}
	defer conn.Close()
	select {
	case <-m.http:
	case <-time.After(10 * time.Second):
		t.Fatal("the member's connection never reached member HTTP")
	}
	// Every idle connection is closed by the node (the first read ends
	// with EOF or a reset, not with the test's own deadline).
	for i, c := range idle {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("idle connection %d still open after 30 s", i)
		}
	}
}

// A member is a server of the raft configuration presenting the
// certificate its record names or a newer one: once a node records its
// certificate, an older one for the same id (a replaced node's, a stolen
// copy) makes no member; a renewed one does at once (a region whose nodes
// all restart with new certificates still elects a leader); before any
// record, any certificate of the region CA for that id does.
func TestMembershipPinsTheCertificate(t *testing.T) {
	ctx := context.Background()
	n, cfg := openUnrecorded(t, nil)
	current, old := Peer{ID: "n1", CertSHA256: [32]byte{1}, NotBefore: 2000}, Peer{ID: "n1", CertSHA256: [32]byte{2}, NotBefore: 1999}
	renewed := Peer{ID: "n1", CertSHA256: [32]byte{3}, NotBefore: 2000} // the same second
	if !n.IsMember(current) || !n.IsMember(old) {
		t.Fatal("a member without a recorded certificate refused")
	}
	if n.IsMember(Peer{ID: "ghost", CertSHA256: [32]byte{1}}) {
		t.Fatal("a node id outside the configuration is a member")
	}
	rec := &fsmpb.Node{Id: "n1", RaftAddr: cfg.RaftAddr, HttpAddr: cfg.HTTPAddr, CommandVersion: command.Version,
		CertSha256: current.CertSHA256[:], CertNotBeforeUnix: current.NotBefore}
	if err := command.PutNode(ctx, n, rec); err != nil {
		t.Fatal(err)
	}
	if !n.IsMember(current) || !n.mayRaft(current) {
		t.Fatal("the recorded certificate refused")
	}
	if n.IsMember(old) || n.mayRaft(old) {
		t.Fatal("another certificate for a member's id is a member once the member recorded its own")
	}
	if !n.IsMember(renewed) || !n.mayRaft(renewed) {
		t.Fatal("a newer certificate for a member's id (renewed, not yet recorded) refused")
	}
	// A renewal that leaked before it was deployed is revoked: no member.
	leak := &fsmpb.RevokedCert{CertSha256: renewed.CertSHA256[:], NodeId: "n1", Reason: "leaked"}
	if err := command.RevokeCert(ctx, n, leak); err != nil {
		t.Fatal(err)
	}
	if n.IsMember(renewed) || n.mayRaft(renewed) {
		t.Fatal("a revoked certificate is a member")
	}
	if !n.IsMember(current) {
		t.Fatal("revoking one certificate of a member refused its recorded one")
	}
}

// A member's raft connections are held against the membership after the
// handshake too: once its peer may no longer speak raft here (removed from
// the configuration, or its certificate replaced), the node closes the
// connections it opened before, within revalidateEvery, instead of reading
// its RPCs for as long as it keeps them open.
func TestRaftConnectionsOfAFormerMemberClosed(t *testing.T) {
	creds := memberCreds(t, "n1")
	m, l := startMux(t, creds)
	var member atomic.Bool
	member.Store(true)
	admit := func(Peer) bool { return member.Load() }
	m.admitRaft.Store(&admit)
	conn, err := tls.Dial("tcp", l.Addr().String(), creds.ClientConfig(l.Addr().String(), membertls.ProtoRaft))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var served net.Conn
	select {
	case served = <-m.raft:
	case <-time.After(10 * time.Second):
		t.Fatal("a member's raft connection never reached raft")
	}
	defer served.Close()
	if _, err := conn.Write([]byte("rpc")); err != nil {
		t.Fatal(err)
	}
	if _, err := served.Read(make([]byte, 3)); err != nil {
		t.Fatalf("raft reads a member's connection: %v", err)
	}
	member.Store(false) // removed
	conn.SetReadDeadline(time.Now().Add(10 * revalidateEvery))
	if _, err := conn.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection of a former member still open")
	}
	m.raftConns.Lock()
	defer m.raftConns.Unlock()
	if n := len(m.raftConns.m); n != 0 {
		t.Fatalf("%d raft connections remembered after they closed", n)
	}
}
