package clustertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/efgs/efgstest"
)

// gatewayCountry is a country's credentials for the EU gateway, as files.
type gatewayCountry struct {
	code                                 string
	authCert, authKey, signCert, signKey string
}

// newGatewayCountry makes a country's authentication and signing
// certificates and keys.
func newGatewayCountry(t testing.TB, code string) gatewayCountry {
	t.Helper()
	dir := t.TempDir()
	pair := func(name string) (certFile, keyFile string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		cert, err := efgstest.Certificate(key, code, "efgs "+name+" "+code, false)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalECPrivateKey(key)
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
		return certFile, keyFile
	}
	g := gatewayCountry{code: code}
	g.authCert, g.authKey = pair("auth")
	g.signCert, g.signKey = pair("sign")
	return g
}

// flags are a node's flags to exchange through the gateway at url, whose
// download batches the hub's key signs.
func (g gatewayCountry) flags(url, anchorFile, caFile, hubKeyFile string) []string {
	return []string{"--efgs-url", url, "--efgs-hub-key-file", hubKeyFile, "--efgs-country", g.code, "--efgs-auth-cert", g.authCert, "--efgs-auth-key", g.authKey,
		"--efgs-sign-cert", g.signCert, "--efgs-sign-key", g.signKey, "--efgs-trust-anchor", anchorFile, "--efgs-ca-file", caFile,
		"--efgs-interval", "1s", "--efgs-visited", "DE,FR"}
}

// hubCertificate is a self-signed HTTPS certificate for the hub's node
// addresses, and its key, as files.
func hubCertificate(t testing.TB, ips ...string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stand-in EU gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "hub.pem"), filepath.Join(dir, "hub.key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
}

// efgsCursor is the tag of the last gateway batch a node's region
// imported, as its admin view says.
func efgsCursor(c *cluster, id string) string {
	_, body, err := c.tryAdminGet(id, "/v1/admin/federation")
	var view struct {
		EFGS struct {
			CursorTag string `json:"cursor_tag"`
		} `json:"efgs"`
	}
	if err != nil || json.Unmarshal(body, &view) != nil {
		return ""
	}
	return view.EFGS.CursorTag
}

// hubKeys is how many keys the hub region holds, as a node's admin view
// says (-1: it did not answer).
func hubKeys(c *cluster, id string) int {
	_, body, err := c.tryAdminGet(id, "/v1/admin/federation")
	var view struct {
		Hub struct{ Keys int } `json:"hub"`
	}
	if err != nil || json.Unmarshal(body, &view) != nil {
		return -1
	}
	return view.Hub.Keys
}

// hubExchange is a stand-in gateway served by a hub region of three
// nodes, and two single-node regions, DE and FR, that exchange through it
// over mutual TLS; FR trusts DE and downloads when the hub calls it back
// (its own schedule is an hour). The countries speak to hub node via,
// which is not the hub's leader.
type hubExchange struct {
	hub, de, fr *cluster
	leader, via string
}

// newHubExchange starts a hub exchange, the hub's clock offset by offset.
func newHubExchange(tb testing.TB, offset time.Duration) *hubExchange {
	tb.Helper()
	hub := newCluster(tb)
	hub.region = "hub"
	hubCert, hubKey := hubCertificate(tb, hub.ip(1), hub.ip(2), hub.ip(3))
	signing := filepath.Join(tb.TempDir(), "hub")
	if out, err := exec.Command(binary, "keygen", "--out", signing).CombinedOutput(); err != nil {
		tb.Fatalf("keygen: %v %s", err, out)
	}
	// FR's API is behind a TLS front (as a load balancer would be), which
	// the hub calls back.
	var frURL atomic.Pointer[string]
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := frURL.Load()
		if base == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		resp, err := http.Get(*base + r.URL.RequestURI())
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	tb.Cleanup(front.Close)
	frontCA := filepath.Join(tb.TempDir(), "front.pem")
	writeFile(tb, frontCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}))
	hub.nodeFlags = func(ip string) []string {
		return []string{"--hub-addr", ip + ":8443", "--hub-cert-file", hubCert, "--hub-key-file", hubKey, "--hub-signing-key-file", signing + ".key",
			"--hub-private-callbacks", "--hub-callback-ca-file", frontCA, "--test-clock-offset", offset.String()}
	}
	hub.form(3)
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor, err := efgstest.Certificate(anchorKey, "", "efgs trust anchor", true)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	anchorFile, anchorKeyFile := filepath.Join(dir, "anchor.pem"), filepath.Join(dir, "anchor.key")
	writeFile(tb, anchorFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: anchor.Raw}))
	kder, _ := x509.MarshalPKCS8PrivateKey(anchorKey)
	writeFile(tb, anchorKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))

	// The countries speak to a hub node that is not its leader, which is
	// then killed.
	leader := hub.leaderAmong(hub.ids(3)...)
	via := "n1"
	if leader == via {
		via = "n2"
	}
	url := "https://" + hub.node(via).ip + ":8443/efgs"
	countries := map[string]gatewayCountry{}
	for _, code := range []string{"DE", "FR"} {
		g := newGatewayCountry(tb, code)
		countries[code] = g
		hub.cli("hub", "country", "--addr", hub.node(via).url(), "--country", code, "--auth-cert", g.authCert, "--sign-cert", g.signCert,
			"--anchor-key", anchorKeyFile)
	}
	_, exportDE := exportKey(tb, tb.TempDir())
	de := newRegion(tb, "DE", append(append(exportDE, "--seal-interval", "1s", "--seal-min-keys", "50"), countries["DE"].flags(url, anchorFile, hubCert, signing+".pub.pem")...)...)
	// FR downloads when the hub calls it back (its own schedule is an hour).
	frFlags := append(countries["FR"].flags(url, anchorFile, hubCert, signing+".pub.pem"), "--efgs-interval", "1h",
		"--efgs-callback-url", front.URL+"/v1/efgs/callback")
	fr := newRegion(tb, "FR", frFlags...)
	frURL.Store(new(fr.node("n1").url()))
	fr.cli("trust", "add-efgs", "--addr", fr.node("n1").url(), "--country", "DE")
	return &hubExchange{hub: hub, de: de, fr: fr, leader: leader, via: via}
}

// Two countries, each a region of this project, exchange keys through a
// stand-in gateway served by a third region of three nodes, over mutual
// TLS: DE's leader uploads each sealed batch's real keys once (no
// padding); the hub calls FR back on each new batch, and FR's leader
// imports it after checking it against its audit and the hub's signature
// (FR's own schedule is an hour: only callbacks bring the keys), and
// follows the chain across the hub's UTC midnight. The hub's leader is killed after the first exchange:
// the hub goes on through its other nodes, loses nothing and stores no key
// twice, and FR holds every key DE acknowledged.
func TestEFGSThroughAHubRegion(t *testing.T) {
	// The hub's clock reaches a UTC midnight a minute after its start: the
	// first exchange is on one day, the last on the next.
	offset := time.Now().Add(24 * time.Hour).UTC().Truncate(24 * time.Hour).Add(-time.Minute).Sub(time.Now()).Round(time.Second)
	hubMidnight := time.Now().Add(time.Minute)
	x := newHubExchange(t, offset)
	hub, de, fr, leader, via := x.hub, x.de, x.fr, x.leader, x.via

	acked := &ackSet{}
	start := time.Now()
	keys, err := de.upload(de.node("n1").url())
	if err != nil {
		t.Fatal(err)
	}
	acked.add(keys)
	fr.waitHasAll(acked, 60*time.Second, "n1")
	t.Logf("DE's upload held by FR through the hub after %v (DE seals and uploads every 1s; FR downloads when called back)", time.Since(start).Round(time.Millisecond))
	firstDay := time.Now().Add(offset).UTC().Format("20060102")
	if tag := efgsCursor(fr, "n1"); !strings.HasPrefix(tag, firstDay+"-") || !time.Now().Before(hubMidnight) {
		t.Fatalf("the first exchange ended after the hub's midnight (FR's cursor %q): the machine is too slow for this test's minute", tag)
	}
	hub.kill9(leader)
	hub.waitFor("the hub's clock past midnight", 2*time.Minute, func() bool { return time.Now().After(hubMidnight.Add(time.Second)) })
	for range 2 {
		keys, err := de.upload(de.node("n1").url())
		if err != nil {
			t.Fatal(err)
		}
		acked.add(keys)
	}
	fr.waitHasAll(acked, 90*time.Second, "n1")
	nextDay := time.Now().Add(offset).UTC().Format("20060102")
	if tag := efgsCursor(fr, "n1"); nextDay == firstDay || !strings.HasPrefix(tag, nextDay+"-") {
		t.Fatalf("FR's cursor is %q after the hub's midnight, want a batch of %s", tag, nextDay)
	}
	if n := hubKeys(hub, via); n != acked.len() {
		t.Fatalf("the hub holds %d keys, want the %d DE acknowledged, each once and no padding", n, acked.len())
	}
}
