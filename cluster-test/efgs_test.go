package clustertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/efgs/efgstest"
)

// efgsFlags makes a country's certificates and keys for the gateway, registers
// its signing certificate there, and returns the flags of a node that
// exchanges through it.
func efgsFlags(t *testing.T, gw *efgstest.Gateway, srv *httptest.Server, country string) []string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, block *pem.Block) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, pem.EncodeToMemory(block))
		return path
	}
	pair := func(name string) (certFile, keyFile string, cert *x509.Certificate) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		cert, err := efgstest.Certificate(key, country, "efgs "+name+" "+country, false)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalECPrivateKey(key)
		return write(name+".pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), write(name+".key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), cert
	}
	authCert, authKey, _ := pair("auth")
	signCert, signKey, sign := pair("sign")
	if err := gw.AddCountry(country, sign); err != nil {
		t.Fatal(err)
	}
	anchor := write("anchor.pem", &pem.Block{Type: "CERTIFICATE", Bytes: gw.Anchor.Raw})
	ca := write("gateway-ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return []string{"--efgs-url", srv.URL + "/efgs", "--efgs-country", country, "--efgs-auth-cert", authCert, "--efgs-auth-key", authKey,
		"--efgs-sign-cert", signCert, "--efgs-sign-key", signKey, "--efgs-trust-anchor", anchor, "--efgs-ca-file", ca,
		"--efgs-interval", "1s", "--efgs-visited", "DE,FR"}
}

// Two countries exchange keys through the EU gateway over mutual TLS: the
// leader of DE's three nodes uploads each sealed batch's real keys once
// (no padding), and after it is killed the new leader goes on from the
// replicated progress, uploading nothing twice and skipping nothing; FR's
// leader imports DE's keys from the gateway's downloads, each batch checked
// against its audit, and holds every key DE acknowledged.
func TestEFGSExchangeThroughAGateway(t *testing.T) {
	gw, err := efgstest.New(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := efgstest.NewServer(gw)
	defer srv.Close()

	_, exportDE := exportKey(t, t.TempDir())
	de := newCluster(t, append(append(exportDE, "--seal-interval", "1s", "--seal-min-keys", "50"), efgsFlags(t, gw, srv, "DE")...)...)
	de.region = "DE"
	de.form(3)
	fr := newRegion(t, "FR", efgsFlags(t, gw, srv, "FR")...)
	fr.cli("trust", "add-efgs", "--addr", fr.node("n1").url(), "--country", "DE")

	acked := &ackSet{}
	keys, err := de.upload(de.node("n2").url())
	if err != nil {
		t.Fatal(err)
	}
	acked.add(keys)
	de.waitFor("DE's first keys at the gateway", 30*time.Second, func() bool {
		total, _ := gw.Keys("DE")
		return total == acked.len()
	})
	leader := de.leaderAmong(de.ids(3)...)
	de.kill9(leader)
	var alive []string
	for _, id := range de.ids(3) {
		if id != leader {
			alive = append(alive, id)
		}
	}
	for _, id := range alive {
		keys, err := de.upload(de.node(id).url())
		if err != nil {
			t.Fatalf("upload through %s after the leader's death: %v", id, err)
		}
		acked.add(keys)
	}
	de.waitFor("every key DE acknowledged at the gateway", 60*time.Second, func() bool {
		total, _ := gw.Keys("DE")
		return total >= acked.len()
	})
	if total, distinct := gw.Keys("DE"); total != acked.len() || distinct != acked.len() {
		t.Fatalf("the gateway holds %d keys of DE (%d distinct), want the %d DE acknowledged, each once (no padding)", total, distinct, acked.len())
	}
	fr.waitHasAll(acked, 60*time.Second, "n1")
}
