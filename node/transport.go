package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
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

// newTransport listens for raft on addr and dials peers from addr's IP.
func newTransport(addr string, logger hclog.Logger) (*raft.NetworkTransport, error) {
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
	stream := &boundStreamLayer{
		Listener:  l,
		dialer:    net.Dialer{LocalAddr: &net.TCPAddr{IP: advertise.IP}},
		advertise: advertise,
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
