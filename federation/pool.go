package federation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/node"
)

// Config configures a node's membership in the federation pool.
type Config struct {
	// Region and NodeID name this node in the pool.
	Region, NodeID string
	// HTTPURL is where other regions fetch batches from this node.
	HTTPURL string
	// BindAddr is the memberlist address (TCP and UDP), advertised as is.
	BindAddr string
	// Join lists pool members to join (any region), retried periodically.
	Join []string
	// PoolKey encrypts and authenticates all gossip (16, 24 or 32 bytes):
	// a process without it can neither join nor read the pool.
	PoolKey []byte
	// OldPoolKeys are also accepted on incoming gossip, never used to
	// send: during a rotation every member holds both keys before any of
	// them sends with the new one.
	OldPoolKeys [][]byte
	// RootCAs verify holders that serve HTTPS (nil: the system's).
	RootCAs *x509.CertPool
	// PullInterval is how often missing batches are fetched.
	PullInterval time.Duration
	Logger       *slog.Logger
}

// Pool is this node's part of the gossip pool of all regions' gateways.
type Pool struct {
	cfg  Config
	node *node.Node
	// isTrusted tells whether this region trusts an origin: gossip state
	// is kept for those only.
	isTrusted func(origin string) bool
	ml        *memberlist.Memberlist
	queue     *memberlist.TransmitLimitedQueue
	client    *http.Client

	mu       sync.Mutex
	seen     map[string]time.Time
	remote   map[string]*remoteMark
	rejected map[string]int
	backoff  map[string]time.Time
	lastSent map[string]uint32
	received map[string]time.Time
	wake     chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// remoteMark is the newest known batch of an origin elsewhere, and the
// batches each holder announced, by holder URL.
type remoteMark struct {
	last    uint32
	holders map[string]span
}

// span is the range of an origin's batches a holder announced.
type span struct{ first, last uint32 }

// Start joins the pool and starts announcing and pulling batches.
func Start(cfg Config, n *node.Node) (*Pool, error) {
	if len(cfg.PoolKey) == 0 {
		return nil, errors.New("federation: a pool key is required (gossip is never plaintext)")
	}
	if cfg.PullInterval == 0 {
		cfg.PullInterval = 2 * time.Second
	}
	p := &Pool{cfg: cfg, node: n, isTrusted: n.FSM().IsTrusted,
		seen: map[string]time.Time{}, remote: map[string]*remoteMark{}, rejected: map[string]int{},
		backoff: map[string]time.Time{}, lastSent: map[string]uint32{}, received: map[string]time.Time{},
		wake: make(chan struct{}, 1)}
	mc, err := p.memberlistConfig()
	if err != nil {
		return nil, err
	}
	if p.ml, err = memberlist.Create(mc); err != nil {
		return nil, fmt.Errorf("federation: start pool on %s: %w", cfg.BindAddr, err)
	}
	p.queue = &memberlist.TransmitLimitedQueue{NumNodes: p.ml.NumMembers, RetransmitMult: 3}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, loop := range []func(context.Context){p.joinLoop, p.announceLoop, p.pullLoop} {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); loop(ctx) }()
	}
	return p, nil
}

func (p *Pool) memberlistConfig() (*memberlist.Config, error) {
	host, portText, err := net.SplitHostPort(p.cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("federation address: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("federation address: %w", err)
	}
	keyring, err := memberlist.NewKeyring(p.cfg.OldPoolKeys, p.cfg.PoolKey)
	if err != nil {
		return nil, fmt.Errorf("federation pool key: %w", err)
	}
	mc := memberlist.DefaultWANConfig()
	// The name says who claims to be whom and from where: a second node
	// claiming the same region and id is another member, whose batches
	// must still verify, not a conflict that hides it.
	mc.Name = p.cfg.Region + "/" + p.cfg.NodeID + "@" + p.cfg.BindAddr
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.Keyring = keyring
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.GossipInterval = 200 * time.Millisecond
	mc.PushPullInterval = 5 * time.Second
	// A push/pull with a member this node cannot reach (partitioned, yet
	// alive to the pool through others' indirect probes) holds the
	// push/pull loop for the whole stream timeout: the WAN default of
	// 30 s left a region that lost its route to an origin without news
	// for minutes. A pool exchange is a few KB.
	mc.TCPTimeout = 5 * time.Second
	mc.Delegate = (*delegate)(p)
	mc.LogOutput = slogWriter{p.cfg.Logger}
	mc.Logger = nil
	tr, err := newBoundTransport(host, port, log.New(slogWriter{p.cfg.Logger}, "", 0))
	if err != nil {
		return nil, fmt.Errorf("federation: listen on %s: %w", p.cfg.BindAddr, err)
	}
	mc.Transport = tr
	p.client = boundClient(host, p.cfg.RootCAs)
	return mc, nil
}

// Close leaves the pool and stops the loops.
func (p *Pool) Close() error {
	p.cancel()
	p.wg.Wait()
	leaveErr := p.ml.Leave(2 * time.Second)
	return errors.Join(leaveErr, p.ml.Shutdown())
}

// joinLoop joins the seeds, and joins them again from time to time:
// peers are forgotten after a long partition.
func (p *Pool) joinLoop(ctx context.Context) {
	for {
		if len(p.cfg.Join) > 0 && p.ml.NumMembers() <= len(p.cfg.Join) {
			if _, err := p.ml.Join(p.cfg.Join); err != nil {
				p.cfg.Logger.Debug("federation: join", "err", err)
			}
		}
		if sleep(ctx, 5*time.Second) != nil {
			return
		}
	}
}

// Members lists the pool's members by name.
func (p *Pool) Members() []string {
	var out []string
	for _, m := range p.ml.Members() {
		out = append(out, m.Name)
	}
	return out
}

// Status is what operators see of the pool.
type Status struct {
	Members  []string          `json:"members"`
	Remote   map[string]uint32 `json:"remote_last_seq"`
	Rejected map[string]int    `json:"rejected"`
	// LastReceived is when this node last imported a batch of each origin
	// (only the leader imports).
	LastReceived map[string]time.Time `json:"last_received"`
}

// Status reports the members, the newest batch known elsewhere per origin
// and the batches rejected, by reason.
func (p *Pool) Status() Status {
	members := p.Members() // before the lock the gossip delegate needs
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{Members: members, Remote: map[string]uint32{}, Rejected: map[string]int{}, LastReceived: map[string]time.Time{}}
	for o, t := range p.received {
		st.LastReceived[o] = t.UTC()
	}
	for o, r := range p.remote {
		st.Remote[o] = r.last
	}
	for k, v := range p.rejected {
		st.Rejected[k] = v
	}
	return st
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// slogWriter routes memberlist's log lines to slog at debug level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.l.Debug("memberlist: " + string(b))
	return len(b), nil
}

var _ io.Writer = slogWriter{}

func encode(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic("federation: encode gossip: " + err.Error())
	}
	return b
}
