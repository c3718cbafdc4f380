package node

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/covid-backend/covid-backend/membertls"
)

// maxHandshakes bounds the TLS handshakes in flight on the member port, so
// that strangers opening connections cannot make it hold unbounded memory.
const maxHandshakes = 256

// memberMux serves the member port under mutual TLS 1.3: it completes each
// handshake (within handshakeTimeout, on a goroutine of its own, so that a
// slow stranger holds up no one) and hands the connection to raft or to
// the member HTTP server by the protocol the peer negotiated. A stranger
// (plain TCP, another CA, no certificate) never gets past the handshake.
type memberMux struct {
	ln          net.Listener
	creds       *membertls.Credentials
	raft, http  chan net.Conn
	closed      chan struct{}
	once        sync.Once
	handshaking chan struct{}
}

func newMemberMux(ln net.Listener, creds *membertls.Credentials) *memberMux {
	m := &memberMux{ln: ln, creds: creds, raft: make(chan net.Conn), http: make(chan net.Conn),
		closed: make(chan struct{}), handshaking: make(chan struct{}, maxHandshakes)}
	go m.loop()
	return m
}

func (m *memberMux) loop() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			time.Sleep(10 * time.Millisecond) // a transient accept error
			continue
		}
		select {
		case m.handshaking <- struct{}{}:
			go m.route(conn)
		default:
			conn.Close() // too many strangers at once
		}
	}
}

func (m *memberMux) route(conn net.Conn) {
	defer func() { <-m.handshaking }()
	tc := tls.Server(conn, m.creds.ServerConfig(membertls.ProtoRaft, membertls.ProtoMember))
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	var conn2 net.Conn = tc
	to := m.http
	switch tc.ConnectionState().NegotiatedProtocol {
	case membertls.ProtoRaft:
		to = m.raft
	case membertls.ProtoMember:
		// Hidden from net/http, which would look for a handler of this ALPN
		// protocol; the peer is authenticated already.
		conn2 = authenticatedConn{tc}
	default:
		tc.Close()
		return
	}
	select {
	case to <- conn2:
	case <-m.closed:
		tc.Close()
	}
}

func (m *memberMux) accept(from chan net.Conn, done <-chan struct{}) (net.Conn, error) {
	select {
	case c := <-from:
		return c, nil
	case <-m.closed:
		return nil, net.ErrClosed
	case <-done:
		return nil, net.ErrClosed
	}
}

// Close stops the member port (raft's transport closes it at shutdown).
func (m *memberMux) Close() error {
	m.once.Do(func() { close(m.closed) })
	return m.ln.Close()
}

// authenticatedConn is a member's connection past the handshake, served as
// plain HTTP/1.1.
type authenticatedConn struct{ net.Conn }

// memberHTTPListener is the member HTTP server's side of the member port;
// closing it (at the server's shutdown) leaves the port to raft.
type memberHTTPListener struct {
	m    *memberMux
	done chan struct{}
	once *sync.Once
}

func newMemberHTTPListener(m *memberMux) memberHTTPListener {
	return memberHTTPListener{m: m, done: make(chan struct{}), once: &sync.Once{}}
}

func (l memberHTTPListener) Accept() (net.Conn, error) { return l.m.accept(l.m.http, l.done) }
func (l memberHTTPListener) Addr() net.Addr            { return l.m.ln.Addr() }

func (l memberHTTPListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}
