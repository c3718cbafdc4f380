package feed

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// When retention removes the first batches of a day, the day's roll-up
// gets a new name; its old name is no longer served with other bytes.
func TestShrunkRollupGetsNewName(t *testing.T) {
	src := newFake()
	src.add(1, day0+10, day0+600, []fsm.Key{key(1)})
	src.add(2, day0+600, day0+1200, []fsm.Key{key(2)})
	c := NewCatalog(Config{Region: "r", Root: "v1/exports", SigningKeys: []export.SigningKey{signingKey(t)}}, src)
	now := time.Unix(day0+2000, 0)
	before := c.Index(now)
	if len(before) != 1 {
		t.Fatalf("index %v", before)
	}
	if _, err := c.File(now, before[0][len("v1/exports/"):]); err != nil {
		t.Fatal(err)
	}
	src.infos = src.infos[1:] // batch 1 expired
	delete(src.keys, 1)
	fresh := NewCatalog(Config{Region: "r", Root: "v1/exports", SigningKeys: c.cfg.SigningKeys}, src)
	after := fresh.Index(now)
	if len(after) != 1 || after[0] == before[0] {
		t.Fatalf("index after retention %v, before %v: want a new name", after, before)
	}
	if _, err := fresh.File(now, before[0][len("v1/exports/"):]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old roll-up name after retention: %v, want ErrNotFound", err)
	}
	f, err := fresh.File(now, after[0][len("v1/exports/"):])
	if err != nil {
		t.Fatal(err)
	}
	d, err := export.Decode(f.Data)
	if err != nil || len(d.File.Keys) != 1 {
		t.Fatalf("shrunk roll-up: %v, %d keys", err, len(d.File.Keys))
	}
}

// A file is signed with the export keys in force when its batch was sealed,
// so adding or retiring a key later leaves its bytes as they were; a node
// without one of those keys does not build the file at all.
func TestFilesKeepTheirSigners(t *testing.T) {
	old, added := signingKey(t), signingKey(t)
	added.KeyID, added.KeyVersion = "new", "v2"
	src := newFake()
	src.add(1, day0+10, day0+600, []fsm.Key{key(1)})
	src.infos[0].Signers = []*fsmpb.ExportSigner{{KeyId: "id", KeyVersion: "v1"}}
	name := fileSpec{start: day0 + 10, end: day0 + 600, part: 1}.rel()

	before, err := NewCatalog(Config{Region: "r", SigningKeys: []export.SigningKey{old}}, src).File(time.Time{}, name)
	if err != nil {
		t.Fatal(err)
	}
	after, err := NewCatalog(Config{Region: "r", SigningKeys: []export.SigningKey{added, old}}, src).File(time.Time{}, name)
	if err != nil || !bytes.Equal(before.Data, after.Data) {
		t.Fatalf("file after a key was added: %v, same bytes %v", err, err == nil && bytes.Equal(before.Data, after.Data))
	}
	if _, err := NewCatalog(Config{Region: "r", SigningKeys: []export.SigningKey{added}}, src).File(time.Time{}, name); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("file on a node without its signer: %v, want ErrNoSigningKey", err)
	}
	// The next batch, sealed with both keys, is signed by both.
	src.add(2, day0+600, day0+1200, []fsm.Key{key(2)})
	src.infos[1].Signers = []*fsmpb.ExportSigner{{KeyId: "new", KeyVersion: "v2"}, {KeyId: "id", KeyVersion: "v1"}}
	f, err := NewCatalog(Config{Region: "r", SigningKeys: []export.SigningKey{old, added}}, src).File(time.Time{}, fileSpec{start: day0 + 600, end: day0 + 1200, part: 1}.rel())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := export.Decode(f.Data)
	for _, sk := range []export.SigningKey{old, added} {
		if err := d.Verify(&sk.Private.PublicKey, sk.KeyID, sk.KeyVersion); err != nil {
			t.Errorf("batch 2 with key %s: %v", sk.KeyID, err)
		}
	}
}
