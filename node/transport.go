package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/covid-backend/covid-backend/membertls"
)

// boundStreamLayer is raft's TCP stream layer, except that outgoing
// connections leave from the node's own advertised IP. On multi-homed hosts
// (and with several nodes on one machine's loopback) peers and firewalls
// then see each node under its own address.
type boundStreamLayer struct {
	net.Listener
	dialer    net.Dialer
	advertise net.Addr
}

func (s *boundStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := s.dialer
	d.Timeout = timeout
	return d.Dial("tcp", string(addr))
}

func (s *boundStreamLayer) Addr() net.Addr { return s.advertise }

// tlsStreamLayer is raft's side of the member port (memberMux): it dials
// members from this node's IP under mutual TLS 1.3 and accepts the
// connections that negotiated raft.
type tlsStreamLayer struct {
	*boundStreamLayer
	mux *memberMux
}

// handshakeTimeout bounds how long a connection may take to prove itself.
const handshakeTimeout = 5 * time.Second

func (s *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := s.boundStreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(conn, s.mux.creds.ClientConfig(string(addr), membertls.ProtoRaft))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

func (s *tlsStreamLayer) Accept() (net.Conn, error) { return s.mux.accept(s.mux.raft, nil) }
func (s *tlsStreamLayer) Close() error              { return s.mux.Close() }

// newTransport listens for raft on addr and dials peers from addr's IP.
// With creds it runs over mutual TLS on a member port that also carries
// member HTTP (the returned mux).
func newTransport(addr, advertiseAddr string, creds *membertls.Credentials, logger hclog.Logger) (*raft.NetworkTransport, *memberMux, error) {
	advertise, err := net.ResolveTCPAddr("tcp", advertiseAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve raft address %s: %w", advertiseAddr, err)
	}
	if advertise.IP.IsUnspecified() {
		return nil, nil, errors.New("raft address must be an address peers can reach, not " + advertiseAddr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for raft on %s: %w", addr, err)
	}
	bound := &boundStreamLayer{
		Listener:  l,
		dialer:    net.Dialer{LocalAddr: &net.TCPAddr{IP: advertise.IP}},
		advertise: advertise,
	}
	if creds == nil {
		return raft.NewNetworkTransportWithLogger(bound, 5, 10*time.Second, logger), nil, nil
	}
	mux := newMemberMux(l, creds)
	stream := &tlsStreamLayer{boundStreamLayer: bound, mux: mux}
	return raft.NewNetworkTransportWithLogger(stream, 5, 10*time.Second, logger), mux, nil
}

// newPeerClient is the HTTP client for member-to-member requests; like the
// raft transport it connects from the node's own IP, and with a member
// credential it speaks to the members' ports under mutual TLS.
func newPeerClient(cfg Config) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip := hostIP(cfg.RaftAddr); cfg.MemberTLS != nil && ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	} else if ip := hostIP(cfg.HTTPAddr); ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
	}
	if creds := cfg.MemberTLS; creds != nil {
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&tls.Dialer{NetDialer: d, Config: creds.ClientConfig(addr, membertls.ProtoMember)}).DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: t}
}

func hostIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && !ip.IsUnspecified() {
		return ip
	}
	return nil
}

// memberURL is the base URL of a member's member endpoints: its member
// port (raft address) under mutual TLS, or its API port with plaintext
// raft.
func (n *Node) memberURL(raftAddr, httpAddr string) string {
	if n.cfg.MemberTLS != nil {
		return "https://" + raftAddr
	}
	return "http://" + httpAddr
}
