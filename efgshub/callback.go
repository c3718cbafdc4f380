package efgshub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Callback delivery, as EFGS's: a GET of the URL with the batch's tag and
// day, 10 seconds, any 2xx a success; 5 tries 300 s apart, after which the
// subscription is deleted.
const (
	callbackTimeout = 10 * time.Second
	callbackTries   = 5
	// announceAgain is how recent a batch a new leader announces again.
	announceAgain = 2 * time.Minute
)

// notPublic are ranges netip does not count as private that a callback
// must not reach either: shared address space (RFC 6598), "this network",
// benchmarking, reserved, and NAT64 (which reaches IPv4 private space).
var notPublic = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("64:ff9b::/96")}

// PublicAddress tells whether a callback may reach ip: not loopback,
// private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local,
// unspecified, multicast or one of notPublic (EFGS refused fewer).
func PublicAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!ip.IsUnspecified() && !ip.IsMulticast() && !slices.ContainsFunc(notPublic, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// CheckCallbackURL refuses a callback URL EFGS refused: not https, with a
// query, or a host that does not resolve or resolves to an address that
// is not public (unless allowPrivate, for a hub on a private network).
func CheckCallbackURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("callback URL: %w", err)
	case u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return errors.New("a callback URL is https, with a host and without a query")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("the callback's host %s does not resolve", u.Hostname())
	}
	for _, a := range addrs {
		if !allowPrivate && !PublicAddress(a) {
			return fmt.Errorf("the callback's host %s resolves to %s, not a public address", u.Hostname(), a)
		}
	}
	return nil
}

// CallbackClient is the client that calls callbacks: the address is
// checked when the connection is made, on the address connected to, so
// that a name that resolved to a public address at registration cannot
// send the hub to a private one later (EFGS checked the name apart from
// the connection). roots, when set, are the CAs the callbacks' HTTPS
// certificates chain to (else the system's).
func CallbackClient(allowPrivate bool, roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: callbackTimeout, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		if !allowPrivate && !PublicAddress(ap.Addr()) {
			return fmt.Errorf("callback to %s: not a public address", ap.Addr())
		}
		return nil
	}}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	transport.Proxy = nil
	if roots != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: callbackTimeout, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// NotifyState is what the notifier reads of the region's state.
type NotifyState interface {
	HubBatches() []*fsmpb.HubBatch
	HubCountries() []*fsmpb.HubCountry
}

// Notifier calls the countries' callbacks on each new download batch. The
// hub's leader runs one; it starts with the batches already there as
// announced, but for those of the last two minutes, which the leader
// before may not have announced (a callback may come twice; a country
// then finds nothing new). A callback has one call pending at most, for
// the newest batch: a country that is called downloads all that is new.
type Notifier struct {
	State      NotifyState
	Applier    command.Applier
	Client     *http.Client
	RetryAfter time.Duration
	Logger     *slog.Logger
	seen       map[string]bool
	pending    map[[2]string]*task // by country and callback id
}

type task struct {
	country, id, url, tag, date string
	tries                       int
	due                         time.Time
}

// callsAtOnce bounds the calls a step makes at the same time, so that a
// few countries' unreachable callbacks hold the others up for one
// timeout, not one each.
const callsAtOnce = 16

// Step announces new batches and makes the calls that are due at now.
func (n *Notifier) Step(ctx context.Context, now time.Time) {
	batches := n.State.HubBatches()
	if n.seen == nil {
		n.seen, n.pending = map[string]bool{}, map[[2]string]*task{}
		for _, b := range batches {
			if now.Unix()-b.GetUploadedUnix() > int64(announceAgain/time.Second) {
				n.seen[b.GetTag()] = true
			}
		}
	}
	n.announce(batches, now)
	current := map[[3]string]bool{}
	for _, c := range n.State.HubCountries() {
		for _, cb := range c.GetCallbacks() {
			current[[3]string{c.GetCountry(), cb.GetId(), cb.GetUrl()}] = true
		}
	}
	var due []*task
	for key, t := range n.pending {
		switch {
		case !current[[3]string{t.country, t.id, t.url}]:
			delete(n.pending, key) // deleted or registered anew since
		case !t.due.After(now):
			due = append(due, t)
		}
	}
	errs := make([]error, len(due))
	sem := make(chan struct{}, callsAtOnce)
	var wg sync.WaitGroup
	for i, t := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			errs[i] = n.call(ctx, t)
			<-sem
		}()
	}
	wg.Wait()
	for i, t := range due {
		key := [2]string{t.country, t.id}
		switch err := errs[i]; {
		case err == nil:
			delete(n.pending, key)
		case t.tries+1 >= callbackTries:
			n.Logger.Warn("hub: a callback failed 5 times and is deleted", "country", t.country, "id", t.id, "err", err)
			if err := command.PutHubCallback(ctx, n.Applier, &fsmpb.HubCallback{Country: t.country, Id: t.id, Url: t.url, Remove: true}); err != nil {
				n.Logger.Warn("hub: delete callback", "err", err)
			}
			delete(n.pending, key)
		default:
			t.tries++
			t.due = now.Add(n.RetryAfter)
		}
	}
}

// announce makes every callback's pending call name the newest batch not
// seen; a callback with a call pending keeps its tries and its time.
func (n *Notifier) announce(batches []*fsmpb.HubBatch, now time.Time) {
	kept := map[string]bool{}
	var newest *fsmpb.HubBatch
	for _, b := range batches {
		kept[b.GetTag()] = true
		if !n.seen[b.GetTag()] {
			n.seen[b.GetTag()], newest = true, b
		}
	}
	for tag := range n.seen {
		if !kept[tag] {
			delete(n.seen, tag) // expired
		}
	}
	if newest == nil {
		return
	}
	date := time.Unix(newest.GetDayUnix(), 0).UTC().Format(time.DateOnly)
	for _, c := range n.State.HubCountries() {
		for _, cb := range c.GetCallbacks() {
			key := [2]string{c.GetCountry(), cb.GetId()}
			if t := n.pending[key]; t != nil && t.url == cb.GetUrl() {
				t.tag, t.date = newest.GetTag(), date
				continue
			}
			n.pending[key] = &task{country: c.GetCountry(), id: cb.GetId(), url: cb.GetUrl(), tag: newest.GetTag(), date: date, due: now}
		}
	}
}

func (n *Notifier) call(ctx context.Context, t *task) error {
	q := url.Values{"batchTag": {t.tag}, "date": {t.date}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "covid-backend hub callback")
	resp, err := n.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %d", t.url, resp.StatusCode)
	}
	return nil
}
