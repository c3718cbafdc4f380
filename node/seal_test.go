package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// A node that bootstrapped a region seals before its own record is in the
// replicated state (issue 25: a seal at once after the start, before
// registerSelf's first write). The seal must still record the export keys
// in force, so that a key added later leaves the batch's files as they
// were; stamped at version 1 it recorded none, and its files were signed
// with whatever keys a node had when it built them.
func TestSealBeforeSelfRecordKeepsFiles(t *testing.T) {
	ctx := context.Background()
	first, added := exportKey(t, "310", "v1"), exportKey(t, "310", "v2")
	n, cfg := openUnrecorded(t, func(c *Config) {
		c.ExportSigners = []*fsmpb.ExportSigner{{KeyId: first.KeyID, KeyVersion: first.KeyVersion}}
	})
	if _, ok := n.fsm.Node(cfg.ID); ok {
		t.Fatal("the node recorded itself: the test does not hold it before its record")
	}
	if v := n.RegionVersion(); v != command.Version {
		t.Fatalf("region version of a node alone in its new region: %d, want its build's %d", v, command.Version)
	}
	publishExpiredKey(t, n)
	if _, err := n.SealNow(ctx); err != nil {
		t.Fatal(err)
	}
	b := n.fsm.Batches()
	if len(b) != 1 || len(b[0].Signers) != 1 || b[0].Signers[0].GetKeyVersion() != "v1" {
		t.Fatalf("sealed batch signers %v, want 310/v1", b[0].Signers)
	}
	now := n.cfg.Now()
	before := feed.NewCatalog(feed.Config{Region: "r1", SigningKeys: []export.SigningKey{first}}, n.fsm)
	after := feed.NewCatalog(feed.Config{Region: "r1", SigningKeys: []export.SigningKey{first, added}}, n.fsm)
	names := before.Index(now)
	if len(names) == 0 {
		t.Fatal("no file listed")
	}
	for _, name := range names {
		a, err := before.File(now, name)
		if err != nil {
			t.Fatalf("%s with the first key: %v", name, err)
		}
		b, err := after.File(now, name)
		if err != nil {
			t.Fatalf("%s with a key added: %v", name, err)
		}
		if !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s: %d bytes, then %d after a key was added: the file changed under its name", name, len(a.Data), len(b.Data))
		}
	}
}

// Below command version 2 a seal would record no export keys: the leader
// refuses it as an upgrade still pending (a retry), rather than seal a
// batch whose files could change.
func TestSealRefusedBelowSignersVersion(t *testing.T) {
	ctx := context.Background()
	n, cfg := openUnrecorded(t, nil)
	publishExpiredKey(t, n)
	old := &fsmpb.Node{Id: cfg.ID, RaftAddr: cfg.RaftAddr, HttpAddr: cfg.HTTPAddr, CommandVersion: 1}
	if err := command.PutNode(ctx, n, old); err != nil {
		t.Fatal(err)
	}
	_, err := n.SealNow(ctx)
	if !Retryable(err) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("seal in a region of version 1: %v, want an upgrade pending", err)
	}
	if got := len(n.fsm.Batches()); got != 0 {
		t.Fatalf("%d batches sealed", got)
	}
}

func exportKey(t *testing.T, id, version string) export.SigningKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return export.SigningKey{Private: k, KeyID: id, KeyVersion: version}
}

// publishExpiredKey publishes one key whose validity ended a day ago, so
// that the next seal publishes it.
func publishExpiredKey(t *testing.T, n *Node) {
	t.Helper()
	data, sub := make([]byte, 16), make([]byte, 16)
	rand.Read(data)
	rand.Read(sub)
	start := int32(n.cfg.Now().Add(-48*time.Hour).Unix()/600) / 144 * 144
	digest := make([]byte, 32)
	binary.BigEndian.PutUint64(digest, 1)
	der, err := x509.MarshalPKIXPublicKey(&exportKey(t, "k1", "v1").Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ha := &fsmpb.Authority{Issuer: "https://ha.example.org", Audience: "covid-backend", AppIds: []string{"org.example.covid"},
		Keys: []*fsmpb.AuthorityKey{{Kid: "k1", PublicKeyDer: der}}}
	if err := command.PutAuthority(context.Background(), n, ha); err != nil {
		t.Fatal(err)
	}
	_, err = command.Publish(context.Background(), n, &fsmpb.Publish{SubmissionId: sub, AppId: "org.example.covid",
		Issuer: "https://ha.example.org", AuthorityKid: "k1", CertificateDigest: digest,
		Keys: []*fsmpb.Key{{KeyData: data, RollingStart: start, RollingPeriod: 144, TransmissionRisk: 1, ReportType: 1}}})
	if err != nil {
		t.Fatal(err)
	}
}
