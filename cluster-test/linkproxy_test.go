package clustertest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// linkProxy stands on the member links of nodes (raft and member HTTP):
// a node started with it listens on ip:7000 and advertises ip:7100, where
// the proxy forwards to it, so every connection to it passes here. This
// machine's kernel has no netem qdisc, so delay, stalls and cut
// connections are made here: a fault set on a node's IP applies to every
// connection to or from it.
type linkProxy struct {
	t         testing.TB
	mu        sync.Mutex
	faults    map[string]linkFault
	conns     map[*proxied]struct{}
	listening map[string]net.Listener
}

// linkFault is what a node's links suffer: each chunk waits delay before
// it is passed on; while stalled nothing is passed on (connections stay
// open, the nastiest partition).
type linkFault struct {
	delay time.Duration
	stall bool
}

type proxied struct {
	src, dst string
	a, b     net.Conn
}

// proxyPort is the port a proxied node advertises for its member port.
const proxyPort = "7100"

func newLinkProxy(t testing.TB) *linkProxy {
	p := &linkProxy{t: t, faults: map[string]linkFault{}, conns: map[*proxied]struct{}{}, listening: map[string]net.Listener{}}
	t.Cleanup(p.close)
	return p
}

// listen makes sure the proxy forwards ip:7100 to ip:7000.
func (p *linkProxy) listen(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listening[ip] != nil {
		return
	}
	l, err := net.Listen("tcp", ip+":"+proxyPort)
	if err != nil {
		p.t.Fatalf("link proxy for %s: %v", ip, err)
	}
	p.listening[ip] = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.forward(c, ip)
		}
	}()
}

func (p *linkProxy) forward(a net.Conn, dst string) {
	src, _, _ := net.SplitHostPort(a.RemoteAddr().String())
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(dst)}}
	b, err := d.Dial("tcp", dst+":7000")
	if err != nil {
		a.Close()
		return
	}
	c := &proxied{src: src, dst: dst, a: a, b: b}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pump(c, b, a); done <- struct{}{} }()
	go func() { p.pump(c, a, b); done <- struct{}{} }()
	<-done
	a.Close()
	b.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pump copies from r to w, chunk by chunk, under the link's fault.
func (p *linkProxy) pump(c *proxied, w io.Writer, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			for {
				f := p.fault(c)
				if !f.stall {
					time.Sleep(f.delay)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *linkProxy) fault(c *proxied) linkFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, g := p.faults[c.src], p.faults[c.dst]
	return linkFault{delay: max(f.delay, g.delay), stall: f.stall || g.stall}
}

// set puts a fault on every link of the node at ip; the zero fault heals.
func (p *linkProxy) set(ip string, f linkFault) {
	p.mu.Lock()
	p.faults[ip] = f
	p.mu.Unlock()
}

// cut closes every connection to or from the node at ip (its peers dial
// again at once).
func (p *linkProxy) cut(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if c.src == ip || c.dst == ip {
			c.a.Close()
			c.b.Close()
		}
	}
}

func (p *linkProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listening {
		l.Close()
	}
	for c := range p.conns {
		c.a.Close()
		c.b.Close()
	}
}

// Faults on member links, through the proxy (the nodes advertise it with
// --raft-advertise): the leader's links stalled (connections open, nothing
// passes), a follower's links slowed, the leader's connections cut again
// and again. The region elects around the stalled leader and takes
// uploads through every fault; every acknowledged key is on every node.
func TestMemberLinkFaults(t *testing.T) {
	c := newCluster(t)
	c.proxy = newLinkProxy(t)
	c.form(3)
	l := c.startLoad(4, func() []string { return c.ids(3) })
	progress := func(what string) {
		n := l.acked.len()
		c.waitFor("uploads while "+what, 30*time.Second, func() bool { return l.acked.len() >= n+14*10 })
	}
	progress("all is well")
	leader := c.waitLeader(10*time.Second, c.ids(3)...)
	c.proxy.set(c.node(leader).ip, linkFault{stall: true})
	c.waitFor("a leader other than the stalled "+leader, 30*time.Second, func() bool {
		for _, id := range without(c.ids(3), leader) {
			if st, err := c.status(id); err == nil && st.State == "Leader" {
				return true
			}
		}
		return false
	})
	progress(leader + "'s links are stalled")
	c.proxy.set(c.node(leader).ip, linkFault{})

	slow := without(c.ids(3), c.waitLeader(20*time.Second, c.ids(3)...))[0]
	c.proxy.set(c.node(slow).ip, linkFault{delay: 100 * time.Millisecond})
	progress(slow + "'s links are slow")
	c.proxy.set(c.node(slow).ip, linkFault{})

	leader = c.waitLeader(20*time.Second, c.ids(3)...)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				c.proxy.cut(c.node(leader).ip)
			}
		}
	}()
	progress(leader + "'s connections are cut every 300 ms")
	close(stop)
	l.stop()
	c.waitHasAll(l.acked, 30*time.Second, c.ids(3)...)
}
