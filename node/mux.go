package node

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/covid-backend/covid-backend/membertls"
)

// maxHandshakes bounds the TLS handshakes in flight on the member port, so
// that strangers opening connections cannot make it hold unbounded memory;
// maxHandshakesPerIP bounds those of one address, so that one stranger
// cannot take every slot from the members (a member opens a few
// connections at a time: raft's pool and member HTTP).
const (
	maxHandshakes      = 256
	maxHandshakesPerIP = 16
)

// silentTimeout is how long a connection may stay silent before its first
// byte: a member sends its TLS ClientHello at once, an idle stranger only
// holds a slot.
const silentTimeout = time.Second

// memberMux serves the member port under mutual TLS 1.3: it completes each
// handshake (within handshakeTimeout, on a goroutine of its own, so that a
// slow stranger holds up no one) and hands the connection to raft or to
// the member HTTP server by the protocol the peer negotiated. A stranger
// (plain TCP, another CA, no certificate) never gets past the handshake.
// A certificate of the region CA is not membership: raft is spoken only
// with a peer whose certificate names a server of the region's raft
// configuration (admitRaft), and member HTTP learns the peer (MemberPeer:
// its id and certificate) to decide per request.
type memberMux struct {
	ln          net.Listener
	creds       *membertls.Credentials
	raft, http  chan net.Conn
	closed      chan struct{}
	once        sync.Once
	handshaking chan struct{}
	perIP       struct {
		sync.Mutex
		n map[string]int
	}
	// admitRaft tells whether a peer may speak raft here; nil (raft not
	// running yet) admits no one.
	admitRaft atomic.Pointer[func(Peer) bool]
	// raftConns are the connections handed to raft, with their peers, so
	// that a peer that stops being a member (removed, or its certificate
	// replaced) loses those it holds open (revalidate).
	raftConns struct {
		sync.Mutex
		m map[*raftConn]Peer
	}
}

// revalidateEvery is how often the raft connections are held against
// the membership again.
const revalidateEvery = time.Second

func newMemberMux(ln net.Listener, creds *membertls.Credentials) *memberMux {
	m := &memberMux{ln: ln, creds: creds, raft: make(chan net.Conn), http: make(chan net.Conn),
		closed: make(chan struct{}), handshaking: make(chan struct{}, maxHandshakes)}
	m.raftConns.m = map[*raftConn]Peer{}
	go m.loop()
	go m.revalidate()
	return m
}

// revalidate closes, every revalidateEvery, the raft connections of peers
// that may no longer speak raft here: admission at the handshake alone
// would leave a removed member the connections it opened before.
func (m *memberMux) revalidate() {
	t := time.NewTicker(revalidateEvery)
	defer t.Stop()
	for {
		select {
		case <-m.closed:
			return
		case <-t.C:
		}
		admit := m.admitRaft.Load()
		m.raftConns.Lock()
		var drop []*raftConn
		for c, peer := range m.raftConns.m {
			if admit == nil || !(*admit)(peer) {
				drop = append(drop, c)
			}
		}
		m.raftConns.Unlock()
		for _, c := range drop {
			c.Close()
		}
	}
}

// raftConn is a connection handed to raft; closing it forgets it.
type raftConn struct {
	net.Conn
	m    *memberMux
	once sync.Once
}

func (c *raftConn) Close() error {
	c.once.Do(func() {
		c.m.raftConns.Lock()
		delete(c.m.raftConns.m, c)
		c.m.raftConns.Unlock()
	})
	return c.Conn.Close()
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
		ip := remoteIP(conn)
		if !m.takeIP(ip) {
			conn.Close() // this address has enough handshakes in flight
			continue
		}
		select {
		case m.handshaking <- struct{}{}:
			go m.route(conn, ip)
		default:
			m.releaseIP(ip)
			conn.Close() // too many strangers at once
		}
	}
}

// takeIP counts a handshake of ip in flight, unless it has as many as it may.
func (m *memberMux) takeIP(ip string) bool {
	m.perIP.Lock()
	defer m.perIP.Unlock()
	if m.perIP.n[ip] >= maxHandshakesPerIP {
		return false
	}
	if m.perIP.n == nil {
		m.perIP.n = map[string]int{}
	}
	m.perIP.n[ip]++
	return true
}

func (m *memberMux) releaseIP(ip string) {
	m.perIP.Lock()
	defer m.perIP.Unlock()
	if m.perIP.n[ip]--; m.perIP.n[ip] <= 0 {
		delete(m.perIP.n, ip)
	}
}

func remoteIP(conn net.Conn) string {
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return conn.RemoteAddr().String()
	}
	return host
}

func (m *memberMux) route(conn net.Conn, ip string) {
	defer func() { <-m.handshaking }()
	defer m.releaseIP(ip)
	conn.SetDeadline(time.Now().Add(silentTimeout))
	tc := tls.Server(&speakingConn{Conn: conn, then: time.Now().Add(handshakeTimeout)},
		m.creds.ServerConfig(membertls.ProtoRaft, membertls.ProtoMember))
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	state := tc.ConnectionState()
	cert := state.PeerCertificates[0]
	peer := Peer{ID: cert.Subject.CommonName, CertSHA256: sha256.Sum256(cert.Raw), NotBefore: cert.NotBefore.Unix()}
	var conn2 net.Conn = tc
	to := m.http
	switch state.NegotiatedProtocol {
	case membertls.ProtoRaft:
		if admit := m.admitRaft.Load(); admit == nil || !(*admit)(peer) {
			tc.Close() // not a member: its RPCs are never read
			return
		}
		rc := &raftConn{Conn: tc, m: m}
		m.raftConns.Lock()
		m.raftConns.m[rc] = peer
		m.raftConns.Unlock()
		conn2, to = rc, m.raft
	case membertls.ProtoMember:
		// Hidden from net/http, which would look for a handler of this ALPN
		// protocol; the peer is authenticated already.
		conn2 = authenticatedConn{Conn: tc, peer: peer}
	default:
		tc.Close()
		return
	}
	select {
	case to <- conn2:
	case <-m.closed:
		conn2.Close()
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

// speakingConn gives a connection the whole handshake time once its first
// bytes arrive; until then it has silentTimeout.
type speakingConn struct {
	net.Conn
	then  time.Time
	spoke bool
}

func (c *speakingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.spoke {
		c.spoke = true
		c.Conn.SetDeadline(c.then)
	}
	return n, err
}

// Peer is who is on the other end of a member-port connection: the node
// id its certificate names, the certificate's SHA-256 and its start.
type Peer struct {
	ID         string
	CertSHA256 [32]byte
	NotBefore  int64
}

// authenticatedConn is a connection past the handshake, served as plain
// HTTP/1.1, with its peer.
type authenticatedConn struct {
	net.Conn
	peer Peer
}

type peerKey struct{}

// MemberConnContext is the member HTTP server's ConnContext: it keeps the
// connection's peer for MemberPeer.
func MemberConnContext(ctx context.Context, c net.Conn) context.Context {
	if ac, ok := c.(authenticatedConn); ok {
		return context.WithValue(ctx, peerKey{}, ac.peer)
	}
	return ctx
}

// MemberPeer is the peer of a member-port request (the zero Peer when the
// request did not come over the member port).
func MemberPeer(ctx context.Context) Peer {
	p, _ := ctx.Value(peerKey{}).(Peer)
	return p
}

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
