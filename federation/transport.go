package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Bounds of the streams (push/pulls, messages too large for UDP) one node
// takes from the pool. memberlist reads a push/pull of up to 20 MiB, 128
// at once (its constants, not configurable): a holder of the pool key
// could make a node hold gigabytes. A pool exchange is a few KB.
const (
	maxStreamBytes = 1 << 20
	maxStreams     = 8
)

// boundTransport is memberlist's TCP/UDP transport, except that streams
// are dialed from the node's own address (UDP already leaves from the
// bound socket): peers and firewalls see each gateway under its own IP;
// and that incoming streams are bounded: at most maxStreams at once (more
// are closed at once), each read up to maxStreamBytes.
type boundTransport struct {
	*memberlist.NetTransport
	dialer  net.Dialer
	streams chan net.Conn
	slots   chan struct{}
	done    chan struct{}
	stop    sync.Once
}

func newBoundTransport(ip string, port int, logger *log.Logger) (*boundTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{ip}, BindPort: port, Logger: logger})
	if err != nil {
		return nil, err
	}
	t := &boundTransport{NetTransport: nt, dialer: net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}},
		streams: make(chan net.Conn), slots: make(chan struct{}, maxStreams), done: make(chan struct{})}
	go t.limitStreams(nt.StreamCh())
	return t, nil
}

// StreamCh hands memberlist the incoming streams within their bounds.
func (t *boundTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown stops the transport and the stream bounds.
func (t *boundTransport) Shutdown() error {
	t.stop.Do(func() { close(t.done) })
	return t.NetTransport.Shutdown()
}

func (t *boundTransport) limitStreams(in <-chan net.Conn) {
	for {
		select {
		case <-t.done:
			return
		case c := <-in:
			select {
			case t.slots <- struct{}{}:
			default:
				c.Close() // as many streams as a node takes at once
				continue
			}
			lc := &limitedConn{Conn: c, r: io.LimitReader(c, maxStreamBytes), slots: t.slots}
			select {
			case t.streams <- lc:
			case <-t.done:
				lc.Close()
				return
			}
		}
	}
}

// limitedConn is an incoming stream: it reads up to its limit, then ends
// (memberlist refuses the truncated message), and frees its slot when
// closed.
type limitedConn struct {
	net.Conn
	r     io.Reader
	slots chan struct{}
	once  sync.Once
}

func (c *limitedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *limitedConn) Close() error {
	c.once.Do(func() { <-c.slots })
	return c.Conn.Close()
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
