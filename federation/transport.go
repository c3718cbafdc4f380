package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/memberlist"
)

// boundTransport is memberlist's TCP/UDP transport, except that streams
// are dialed from the node's own address (UDP already leaves from the
// bound socket): peers and firewalls see each gateway under its own IP.
type boundTransport struct {
	*memberlist.NetTransport
	dialer net.Dialer
}

func newBoundTransport(ip string, port int, logger *log.Logger) (*boundTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{ip}, BindPort: port, Logger: logger})
	if err != nil {
		return nil, err
	}
	return &boundTransport{NetTransport: nt, dialer: net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}}, nil
}

func (t *boundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := t.dialer
	d.Timeout = timeout
	return d.Dial("tcp", addr)
}

func (t *boundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// boundClient is an HTTP client that connects from ip and verifies HTTPS
// holders against roots (nil: the system's).
func boundClient(ip string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: time.Minute, CheckRedirect: noRedirects, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		// A peer cut off mid-way must not hold a kept-alive connection for
		// the whole transfer timeout.
		ResponseHeaderTimeout: 3 * time.Second,
		IdleConnTimeout:       30 * time.Second,
		// A batch is fetched as is, so that the byte limit is on what
		// arrives; a compressed answer is refused, never inflated.
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:  true,
	}}
}

// noRedirects: a holder answers for itself; a redirect to another host is
// an answer that is not a batch.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
