package efgssync_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgstest"
	"github.com/covid-backend/covid-backend/efgssync"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
)

const issuer = "https://ha.example.org"

// newGateway is a gateway served over TLS on a movable clock, closed
// when the test ends.
func newGateway(t *testing.T) (*clock, *efgstest.Gateway, *httptest.Server) {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	gw, err := efgstest.New(clk.now)
	if err != nil {
		t.Fatal(err)
	}
	srv := efgstest.NewServer(gw)
	t.Cleanup(srv.Close)
	return clk, gw, srv
}

// clock is a test's movable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// country is a region of one country and its exchange with the gateway.
type country struct {
	region *fsmtest.Region
	sync   *efgssync.Sync
	seq    uint32
	sub    byte
	now    func() time.Time
}

func newCountry(t *testing.T, gw *efgstest.Gateway, srv *httptest.Server, code string, now func() time.Time) *country {
	return newCountryVia(t, gw, srv, srv.URL, code, now)
}

// newCountryVia is a country that reaches the gateway's server srv at url
// (a relay's, in front of it).
func newCountryVia(t *testing.T, gw *efgstest.Gateway, srv *httptest.Server, url, code string, now func() time.Time) *country {
	t.Helper()
	authKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	authCert, err := efgstest.Certificate(authKey, code, "efgs auth "+code, false)
	if err != nil {
		t.Fatal(err)
	}
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signCert, err := efgstest.Certificate(signKey, code, "efgs signing "+code, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.AddCountry(code, authCert, signCert); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{authCert.Raw}, PrivateKey: authKey}}}}}
	region := fsmtest.New(now)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ctx := context.Background()
	if err := command.PutAuthority(ctx, region, &fsmpb.Authority{Issuer: issuer, Audience: "aud", AppIds: []string{"app"},
		Keys: []*fsmpb.AuthorityKey{{Kid: "k1", PublicKeyDer: der}}}); err != nil {
		t.Fatal(err)
	}
	return &country{region: region, now: now, sync: &efgssync.Sync{
		Client: &efgs.Client{Base: url + "/efgs", HTTP: client, Country: code, Cert: signCert, Key: signKey, HubKey: gw.HubKey},
		Anchor: gw.Anchor, Visited: []string{"DE", "FR"}, Start: 1, Now: now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
}

// publishAndSeal stores n keys of two days ago from the country's own
// apps and seals them into a batch; it returns the keys.
func (c *country) publishAndSeal(t *testing.T, n int) [][]byte {
	t.Helper()
	ctx := context.Background()
	c.sub++
	today := int32(c.now().Unix() / 600 / 144)
	var keys []*fsmpb.Key
	var data [][]byte
	for range n {
		k := make([]byte, 16)
		rand.Read(k)
		data = append(data, k)
		keys = append(keys, &fsmpb.Key{KeyData: k, RollingStart: (today - 2) * 144, RollingPeriod: 144, TransmissionRisk: 4, ReportType: 1})
	}
	id := make([]byte, 16)
	id[0] = c.sub
	if _, err := command.Publish(ctx, c.region, &fsmpb.Publish{SubmissionId: id, AppId: "app", Issuer: issuer, AuthorityKid: "k1",
		CertificateDigest: make([]byte, 32), Keys: keys}); err != nil {
		t.Fatal(err)
	}
	c.seq++
	if _, err := command.Seal(ctx, c.region, &fsmpb.Seal{Seq: c.seq}); err != nil {
		t.Fatal(err)
	}
	return data
}

// failRecord applies every command but the record of an upload, which it
// answers as a leader lost mid-write: the outcome unknown.
type failRecord struct{ command.Applier }

func (f failRecord) Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	if cmd.GetType() == fsmpb.CommandType_COMMAND_TYPE_EFGS_UPLOADED {
		return nil, errors.New("leadership lost")
	}
	return f.Applier.Apply(ctx, cmd)
}

func holds(st *fsm.FSM, keys [][]byte) int {
	held := map[fsm.TEK]bool{}
	for _, k := range st.Keys(nil) {
		held[k.Data] = true
	}
	n := 0
	for _, k := range keys {
		if held[fsm.TEK(k)] {
			n++
		}
	}
	return n
}

// Two countries exchange keys through a gateway: DE's batches go up once
// each, also when the record of an upload was lost with its leader (the
// upload sent again is answered 409); FR imports them after checking each
// batch against its audit, follows the chain across a UTC midnight, and
// holds them as its own keys; DE does not get its own keys back.
func TestExchangeThroughAGateway(t *testing.T) {
	clk, gw, srv := newGateway(t)
	de, fr := newCountry(t, gw, srv, "DE", clk.now), newCountry(t, gw, srv, "FR", clk.now)
	ctx := context.Background()
	if err := command.PutTrust(ctx, fr.region, &fsmpb.TrustedRegion{Region: "DE", Kind: fsm.TrustEFGSCountry, Merge: true}); err != nil {
		t.Fatal(err)
	}

	first := de.publishAndSeal(t, 3)
	if _, err := de.sync.Upload(ctx, de.region.State, failRecord{de.region}); err == nil {
		t.Fatal("the lost record went unnoticed")
	}
	if n, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil || n != 1 {
		t.Fatalf("upload after the lost record: %d %v", n, err)
	}
	if up := gw.Uploads(); up != 1 {
		t.Fatalf("the gateway stored %d uploads of one batch", up)
	}
	if p := de.region.State.EFGSProgress(); p.GetUploadMark() != 1 || len(p.GetUploads()[0].GetTags()) != 1 {
		t.Fatalf("DE's progress %v", p)
	}
	if n, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil || n != 0 || gw.Uploads() != 1 {
		t.Fatalf("a second pass: %d %v, %d uploads", n, err, gw.Uploads())
	}

	if n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now()); err != nil || n != 1 {
		t.Fatalf("FR's first download: %d %v", n, err)
	}
	if got := holds(fr.region.State, first); got != 3 {
		t.Fatalf("FR holds %d of DE's 3 keys", got)
	}

	clk.add(24 * time.Hour) // DE's next batch goes up after midnight
	second := de.publishAndSeal(t, 2)
	if _, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil {
		t.Fatal(err)
	}
	if n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now()); err != nil || n != 1 {
		t.Fatalf("FR's download across midnight: %d %v (cursor %v)", n, err, fr.region.State.EFGSProgress().GetCursor())
	}
	if got := holds(fr.region.State, second); got != 2 {
		t.Fatalf("FR holds %d of DE's 2 keys of the next day", got)
	}
	if n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now()); err != nil || n != 0 {
		t.Fatalf("FR's download with nothing new: %d %v", n, err)
	}
	if subs := fr.region.State.Submissions(); len(subs) != 2 || subs[0].Issuer != "efgs:DE" {
		t.Fatalf("FR's submissions %+v", subs)
	}
	// DE reads the same chain: its own keys are left out of what it gets.
	if _, err := de.sync.Download(ctx, de.region.State, de.region, clk.now()); err != nil {
		t.Fatal(err)
	}
	if n := len(de.region.State.Keys(nil)); n != 5 {
		t.Fatalf("DE holds %d keys, want its own 5", n)
	}
}

// A relay between the hub and a country that changes the chain (a next
// tag that skips a batch) or a batch's keys is caught by the hub's
// signature: the country imports nothing it served.
func TestRelayCannotReorderTheChain(t *testing.T) {
	clk, gw, srv := newGateway(t)
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var tamper func(*http.Response)
	proxy.ModifyResponse = func(r *http.Response) error {
		mu.Lock()
		defer mu.Unlock()
		if tamper != nil {
			tamper(r)
		}
		return nil
	}
	de, fr := relayedCountries(t, gw, srv, proxy, clk)
	ctx := context.Background()
	if err := command.PutTrust(ctx, fr.region, &fsmpb.TrustedRegion{Region: "DE", Kind: fsm.TrustEFGSCountry, Merge: true}); err != nil {
		t.Fatal(err)
	}
	de.publishAndSeal(t, 2)
	de.publishAndSeal(t, 2)
	if _, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	tamper = func(r *http.Response) {
		if r.Header.Get("nextBatchTag") != "" {
			r.Header.Set("nextBatchTag", "null") // the chain ends early
		}
	}
	mu.Unlock()
	if n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now()); err == nil || n != 0 {
		t.Fatalf("a chain cut short by a relay: %d imported, %v", n, err)
	}
	if len(fr.region.State.Keys(nil)) != 0 {
		t.Fatal("FR imported keys a relay served")
	}
	mu.Lock()
	tamper = nil
	mu.Unlock()
	if n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now()); err != nil || n != 2 {
		t.Fatalf("through an honest relay: %d %v", n, err)
	}
}

// A relay that answers a download with another batch's signed answer is
// caught (the hub signs the tag asked for, and the client checks the tag
// it got): the pass ends at once with an error, importing nothing, where
// it spun before.
func TestReplayedAnswerEndsThePass(t *testing.T) {
	clk, gw, srv := newGateway(t)
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var first *http.Response
	var firstBody []byte
	proxy.ModifyResponse = func(r *http.Response) error {
		mu.Lock()
		defer mu.Unlock()
		if r.Request.Method != http.MethodGet || r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Request.URL.Path, "/efgs/diagnosiskeys/download/") {
			return nil
		}
		if first == nil {
			first, firstBody = r, nil
			body, _ := io.ReadAll(r.Body)
			firstBody = body
			r.Body = io.NopCloser(bytes.NewReader(body))
			return nil
		}
		r.Header = first.Header.Clone() // the first answer, replayed
		r.Body = io.NopCloser(bytes.NewReader(firstBody))
		r.ContentLength = int64(len(firstBody))
		return nil
	}
	de, fr := relayedCountries(t, gw, srv, proxy, clk)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := command.PutTrust(ctx, fr.region, &fsmpb.TrustedRegion{Region: "DE", Kind: fsm.TrustEFGSCountry, Merge: true}); err != nil {
		t.Fatal(err)
	}
	de.publishAndSeal(t, 2)
	de.publishAndSeal(t, 2)
	if _, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil {
		t.Fatal(err)
	}
	n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now())
	if err == nil || ctx.Err() != nil || n != 1 {
		t.Fatalf("a replayed answer: %d imported, %v (context %v)", n, err, ctx.Err())
	}
}

// A cursor on a day the gateway keeps no more (a region down for weeks)
// moves on to the days it keeps, where it stood still on 410 before.
func TestCursorPastTheGatewaysDays(t *testing.T) {
	clk, gw, srv := newGateway(t)
	de, fr := newCountry(t, gw, srv, "DE", clk.now), newCountry(t, gw, srv, "FR", clk.now)
	ctx := context.Background()
	if err := command.PutTrust(ctx, fr.region, &fsmpb.TrustedRegion{Region: "DE", Kind: fsm.TrustEFGSCountry, Merge: true}); err != nil {
		t.Fatal(err)
	}
	de.publishAndSeal(t, 2)
	if _, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil {
		t.Fatal(err)
	}
	if n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now()); err != nil || n != 1 {
		t.Fatalf("first download: %d %v", n, err)
	}
	clk.add(20 * 24 * time.Hour)
	later := de.publishAndSeal(t, 3)
	if _, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil {
		t.Fatal(err)
	}
	if n, err := fr.sync.Download(ctx, fr.region.State, fr.region, clk.now()); err != nil || n != 1 {
		t.Fatalf("after 20 days: %d %v (cursor %v)", n, err, fr.region.State.EFGSProgress().GetCursor())
	}
	if got := holds(fr.region.State, later); got != 3 {
		t.Fatalf("FR holds %d of the 3 later keys", got)
	}
}

// A batch uploaded late, when its keys are older than the gateway takes,
// is recorded without them instead of holding up every later batch.
func TestLateUploadLeavesOutOldKeys(t *testing.T) {
	clk, gw, srv := newGateway(t)
	de := newCountry(t, gw, srv, "DE", clk.now)
	ctx := context.Background()
	de.publishAndSeal(t, 2)
	clk.add(16 * 24 * time.Hour)
	fresh := de.publishAndSeal(t, 3)
	if n, err := de.sync.Upload(ctx, de.region.State, de.region); err != nil || n != 2 {
		t.Fatalf("a late upload: %d batches, %v", n, err)
	}
	if total, _ := gw.Keys("DE"); total != len(fresh) {
		t.Fatalf("the gateway holds %d keys, want the %d fresh ones", total, len(fresh))
	}
}

// relayedCountries are DE, speaking to the gateway directly, and FR,
// speaking to it through proxy: a relay that shows the hub FR's
// certificate (a country's own TLS proxy).
func relayedCountries(t *testing.T, gw *efgstest.Gateway, srv *httptest.Server, proxy *httputil.ReverseProxy, clk *clock) (de, fr *country) {
	t.Helper()
	relay := httptest.NewUnstartedServer(proxy)
	relay.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	relay.StartTLS()
	t.Cleanup(relay.Close)
	de = newCountry(t, gw, srv, "DE", clk.now)
	fr = newCountryVia(t, gw, relay, relay.URL, "FR", clk.now)
	hubRoots := x509.NewCertPool()
	hubRoots.AddCert(srv.Certificate())
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: hubRoots,
		Certificates: fr.sync.Client.HTTP.Transport.(*http.Transport).TLSClientConfig.Certificates}}
	return de, fr
}
