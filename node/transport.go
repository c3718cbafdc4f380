package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
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

// tlsStreamLayer is the bound stream layer under mutual TLS 1.3: only a
// peer with a certificate of the region CA gets past the handshake, and a
// stranger (plain TCP, another CA, no certificate) is dropped before raft
// reads a byte of its RPC.
type tlsStreamLayer struct {
	*boundStreamLayer
	creds *membertls.Credentials
}

// handshakeTimeout bounds how long an accepted connection may take to
// prove itself.
const handshakeTimeout = 5 * time.Second

func (s *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := s.boundStreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(conn, s.creds.ClientConfig(string(addr), membertls.ProtoRaft))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	conn, err := s.boundStreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(conn, s.creds.ServerConfig(membertls.ProtoRaft))}, nil
}

// serverConn completes the TLS handshake, within handshakeTimeout, on its
// first read or write: in raft's goroutine for the connection, so that a
// slow stranger holds up no one else.
type serverConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		c.Conn.SetDeadline(time.Now().Add(handshakeTimeout))
		if c.err = c.Conn.Handshake(); c.err == nil {
			c.err = c.Conn.SetDeadline(time.Time{})
		}
		if c.err != nil {
			c.Conn.Close()
		}
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// newTransport listens for raft on addr and dials peers from addr's IP,
// under mutual TLS when creds are given.
func newTransport(addr string, creds *membertls.Credentials, logger hclog.Logger) (*raft.NetworkTransport, error) {
	advertise, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("resolve raft address %s: %w", addr, err)
	}
	if advertise.IP.IsUnspecified() {
		return nil, errors.New("raft address must be an address peers can reach, not " + addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", addr, err)
	}
	bound := &boundStreamLayer{
		Listener:  l,
		dialer:    net.Dialer{LocalAddr: &net.TCPAddr{IP: advertise.IP}},
		advertise: advertise,
	}
	var stream raft.StreamLayer = bound
	if creds != nil {
		stream = &tlsStreamLayer{boundStreamLayer: bound, creds: creds}
	}
	return raft.NewNetworkTransportWithLogger(stream, 5, 10*time.Second, logger), nil
}

// newPeerClient is the HTTP client for forwarding to other members; like
// the raft transport it connects from the node's own IP.
func newPeerClient(httpAddr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if host, _, err := net.SplitHostPort(httpAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     time.Minute,
		},
	}
}
