package feed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// hsmSigner is a key whose signatures a region replicates, as a seal
// names it, and the key itself (standing in for the HSM).
func hsmSigner(t *testing.T) (*ecdsa.PrivateKey, *fsmpb.ExportSigner) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, &fsmpb.ExportSigner{KeyId: "310", KeyVersion: "v1", PublicKey: der}
}

// sign does what the leader does for batch seq: signs each file ToSign
// lists and keeps the signatures, the batch marked signed.
func (f *fakeSource) sign(t *testing.T, c *Catalog, key *ecdsa.PrivateKey, seq uint32) int {
	t.Helper()
	pending, err := c.ToSign(seq)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		for _, sg := range p.Signers {
			sig, err := ecdsa.SignASN1(rand.Reader, key, p.Digest[:])
			if err != nil {
				t.Fatal(err)
			}
			f.sigs[sigKey(seq, 0, p.Digest[:], sg.GetKeyId(), sg.GetKeyVersion())] = sig
		}
	}
	for i := range f.infos {
		if f.infos[i].Seq == seq {
			f.infos[i].Signed = true
		}
	}
	return len(pending)
}

// With a key whose signatures are replicated, a batch is listed once the
// leader has signed its files, and not before (its file answers "not
// signed yet"); the files are built from the replicated signatures, the
// same bytes by any node, which the key verifies; a backlog signed one
// batch at a time lists only names that can be served; the mirror writes
// a batch once it is signed.
func TestReplicatedSignatures(t *testing.T) {
	key, signer := hsmSigner(t)
	src := newFake()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Unix()
	src.add(1, day+3600, day+7200, []fsm.Key{key1(1), key1(2)})
	src.infos[0].Signers = []*fsmpb.ExportSigner{signer}
	cfg := Config{Region: "r", Root: "v1/exports", SigningKeys: []export.SigningKey{{Signer: replicated{}, KeyID: "310", KeyVersion: "v1"}}}
	c, other := NewCatalog(cfg, src), NewCatalog(cfg, src) // two nodes
	now := time.Unix(day+7300, 0)
	if n := len(c.Index(now)) + len(c.BatchIndex(now)); n != 0 {
		t.Fatalf("an unsigned batch listed: %v %v", c.Index(now), c.BatchIndex(now))
	}
	batchFile := fileSpec{start: day + 3600, end: day + 7200, part: 1}.rel()
	if _, err := c.File(now, batchFile); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("an unsigned file: %v", err)
	}
	mirror := &Mirror{Dir: t.TempDir(), Catalog: c}
	if err := mirror.Sync(now); err != nil {
		t.Fatal(err)
	}
	if n := src.sign(t, c, key, 1); n != 2 {
		t.Fatalf("%d files to sign, want the batch's and its day's roll-up", n)
	}
	if n, _ := c.ToSign(1); len(n) != 0 {
		t.Fatalf("still to sign after signing: %v", n)
	}
	for _, name := range append(c.Index(now), c.BatchIndex(now)...) {
		rel := strings.TrimPrefix(name, "v1/exports/")
		a, err := c.File(now, rel)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := other.File(now, rel)
		if b == nil || string(a.Data) != string(b.Data) {
			t.Fatalf("%s differs between nodes", name)
		}
		d, err := export.Decode(a.Data)
		if err != nil || d.Verify(&key.PublicKey, "310", "v1") != nil {
			t.Fatalf("%s does not verify: %v", name, err)
		}
	}
	if err := mirror.Sync(now); err != nil {
		t.Fatal(err)
	}
	if listed, _ := os.ReadFile(filepath.Join(mirror.Dir, "v1/exports/batches.txt")); !strings.Contains(string(listed), batchFile) {
		t.Fatalf("the mirror's batches.txt after the signature: %q", listed)
	}

	// A backlog of two batches of the day: once the first is signed the
	// index names the roll-up that ends with it, which serves.
	src.add(2, day+7200, day+9000, []fsm.Key{key1(3)})
	src.add(3, day+9000, day+10800, []fsm.Key{key1(4)})
	src.infos[1].Signers, src.infos[2].Signers = src.infos[0].Signers, src.infos[0].Signers
	later := time.Unix(day+11000, 0)
	src.sign(t, c, key, 2)
	index := c.Index(later)
	if len(index) != 1 || len(c.BatchIndex(later)) != 2 {
		t.Fatalf("with batch 3 unsigned: %v %v", index, c.BatchIndex(later))
	}
	if _, err := c.File(later, strings.TrimPrefix(index[0], "v1/exports/")); err != nil {
		t.Fatalf("the roll-up that ends with batch 2: %v", err)
	}
}

// key1 is a key of the test's day.
func key1(n byte) fsm.Key {
	k := key(n)
	k.RollingStart = int32(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).Unix() / 600)
	return k
}
