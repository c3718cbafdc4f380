package fsm_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

func fedKey(t *testing.T, id string) (federation.Key, []byte) {
	t.Helper()
	priv, pub, err := federation.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(priv)
	k, _ := x509.ParsePKCS8PrivateKey(block.Bytes)
	der, err := federation.PublicKeyDER(pub)
	if err != nil {
		t.Fatal(err)
	}
	key, err := federation.LoadKeyFromPKCS8(k, id)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func trust(region string, der []byte, keyID string) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST, PutTrust: &fsmpb.TrustedRegion{
		Region: region, Serve: true, Keys: []*fsmpb.TrustKey{{Id: keyID, PublicKeyDer: der}}}}
}

func importCmd(signed []byte) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH, ImportBatch: &fsmpb.ImportBatch{Signed: signed}}
}

// regionA seals two chained batches as origin "A".
func regionA(t *testing.T) *fsm.FSM {
	t.Helper()
	const today = 20_000
	now := int64(today*day*600 + 3600)
	a := fsm.New()
	mustApply(t, a, publish(1, now-100, dayKey(1, today-2)))
	s1 := sealCmd(1, now, 0, 0)
	s1.Seal.Origin = "A"
	mustApply(t, a, s1)
	mustApply(t, a, publish(2, now, dayKey(2, today-1)))
	s2 := sealCmd(2, now+600, 0, 0)
	s2.Seal.Origin = "A"
	mustApply(t, a, s2)
	return a
}

func signedBatch(t *testing.T, a *fsm.FSM, key federation.Key, seq uint32) []byte {
	t.Helper()
	body, ok := a.FederationBody(seq)
	if !ok {
		t.Fatalf("no body for batch %d", seq)
	}
	return mustSign(t, key, body, nil)
}

// mustSign signs a batch body as its region does.
func mustSign(t testing.TB, key federation.Key, body, exportSig []byte) []byte {
	t.Helper()
	signed, err := key.Sign(body, exportSig)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// A region keeps a trusted region's batches in chain order, exactly as
// received, once each; forgeries, strangers, gaps and conflicts are refused
// without changing anything.
func TestImportForeignBatches(t *testing.T) {
	a := regionA(t)
	keyA, derA := fedKey(t, "a1")
	forger, _ := fedKey(t, "a1") // same key id, other key
	b1, b2 := signedBatch(t, a, keyA, 1), signedBatch(t, a, keyA, 2)

	b := fsm.New()
	if code := codeOf(applyCmd(t, b, importCmd(b1)).Err); code != command.CodeUnknownRegion {
		t.Fatalf("import from an untrusted origin: %q", code)
	}
	mustApply(t, b, trust("A", derA, "a1"))
	if code := codeOf(applyCmd(t, b, importCmd(b2)).Err); code != "" {
		t.Fatalf("first batch seen may start the chain anywhere: %q", code)
	}
	b = fsm.New()
	mustApply(t, b, trust("A", derA, "a1"))
	mustApply(t, b, importCmd(b1))
	if r := mustApply(t, b, importCmd(b1)).GetImport(); !r.Duplicate {
		t.Fatalf("second import of batch 1: %+v", r)
	}
	forged := signedBatch(t, a, forger, 2)
	var tampered fsmpb.SignedBatch
	proto.Unmarshal(b2, &tampered)
	tampered.Body = append(bytes.Clone(tampered.Body), 0x08, 0x01) // append a field: body changes
	tamperedBytes, _ := proto.Marshal(&tampered)
	other := fsm.New() // another history of "A" at the same sequence numbers
	const t0 = int64(20_000*day*600 + 3600)
	mustApply(t, other, publish(9, t0, dayKey(9, 19_990)))
	o1 := sealCmd(1, t0, 0, 0)
	o1.Seal.Origin = "A"
	mustApply(t, other, o1)
	cases := []struct {
		name string
		data []byte
		code command.Code
	}{
		{"forged signature", forged, command.CodeBadSignature},
		{"tampered body", tamperedBytes, command.CodeBadSignature},
		{"garbage", []byte("not a batch"), command.CodeBadBatch},
		{"other content under a kept number", signedBatch(t, other, keyA, 1), command.CodeBatchConflict},
	}
	for _, tc := range cases {
		before := freeze(t, b)
		if code := codeOf(applyCmd(t, b, importCmd(tc.data)).Err); code != tc.code {
			t.Fatalf("%s: code %q, want %q", tc.name, code, tc.code)
		}
		assertUnchanged(t, b, before)
	}
	mustApply(t, b, importCmd(b2))
	if got, ok := b.ForeignSigned("A", 2); !ok || !bytes.Equal(got, b2) {
		t.Fatal("batch 2 is not kept byte for byte")
	}
	// A batch that does not follow the last kept one breaks the chain.
	mustApply(t, other, publish(10, t0+1, dayKey(10, 19_990)))
	o2 := sealCmd(2, t0+2, 0, 0)
	o2.Seal.Origin = "A"
	mustApply(t, other, o2)
	o3 := sealCmd(3, t0+4, 0, 0)
	o3.Seal.Origin = "A"
	mustApply(t, other, publish(11, t0+3, dayKey(11, 19_990)))
	mustApply(t, other, o3)
	if code := codeOf(applyCmd(t, b, importCmd(signedBatch(t, other, keyA, 3))).Err); code != command.CodeBrokenChain {
		t.Fatalf("batch 3 of another chain: %q", code)
	}
	g := fsm.New()
	snap := snapshotBytes(t, b)
	if err := restoreBytes(g, snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Fatal("foreign batches do not survive a snapshot")
	}
}

// Own batches chain by digest, and every node encodes the same body.
func TestOwnBatchChain(t *testing.T) {
	a, again := regionA(t), regionA(t)
	for seq := uint32(1); seq <= 2; seq++ {
		x, _ := a.FederationBody(seq)
		y, _ := again.FederationBody(seq)
		if !bytes.Equal(x, y) {
			t.Fatalf("batch %d body differs between two replicas", seq)
		}
	}
	var first, second fsmpb.FederationBatch
	b1, _ := a.FederationBody(1)
	b2, _ := a.FederationBody(2)
	proto.Unmarshal(b1, &first)
	proto.Unmarshal(b2, &second)
	if len(first.GetPrevDigest()) != 0 || len(second.GetPrevDigest()) != 32 || first.GetOrigin() != "A" || len(first.GetKeys()) != 1 {
		t.Fatalf("chain: %v / %v", &first, &second)
	}
}

// A region trusting another with merge takes its keys into its own key
// set (sealed into its own next batch) and follows its revocations.
func TestMergeForeignKeys(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	a := regionA(t)
	keyA, derA := fedKey(t, "a1")
	b := fsm.New()
	cmd := trust("A", derA, "a1")
	cmd.PutTrust.Merge = true
	mustApply(t, b, cmd)
	mustApply(t, b, publish(50, now, dayKey(50, today-1)))
	r := mustApply(t, b, importCmd(signedBatch(t, a, keyA, 1))).GetImport()
	if r.Merged != 1 {
		t.Fatalf("merged %d keys, want 1", r.Merged)
	}
	seal := mustApply(t, b, sealCmd(1, now+600, 0, 0)).GetSeal()
	if seal.Keys != 2 {
		t.Fatalf("B's batch holds %d keys, want its own and A's", seal.Keys)
	}
	// A revokes its key; B follows when it imports A's next batch.
	mustApply(t, a, revokeCmd(now+700, &fsmpb.Revoke{Keys: [][]byte{tekBytes(1)}}))
	s3 := sealCmd(3, now+1200, 0, 0)
	s3.Seal.Origin = "A"
	mustApply(t, a, s3)
	mustApply(t, b, importCmd(signedBatch(t, a, keyA, 2)))
	r = mustApply(t, b, importCmd(signedBatch(t, a, keyA, 3))).GetImport()
	if r.Revoked != 1 {
		t.Fatalf("B revoked %d of A's keys, want 1", r.Revoked)
	}
	seal = mustApply(t, b, sealCmd(2, now+1800, 0, 0)).GetSeal()
	if seal.Revised != 1 {
		t.Fatalf("B's next batch revises %d keys, want A's revoked key", seal.Revised)
	}
}

// CheckImport tells what an import would do, the same as Apply, and
// changes nothing: the puller checks fetched batches with it before they
// reach the raft log.
func TestCheckImportMatchesApply(t *testing.T) {
	a := regionA(t)
	keyA, derA := fedKey(t, "a1")
	forger, _ := fedKey(t, "a1")
	b1, b2 := signedBatch(t, a, keyA, 1), signedBatch(t, a, keyA, 2)
	b := fsm.New()
	mustApply(t, b, trust("A", derA, "a1"))
	mustApply(t, b, importCmd(b1))
	cases := []struct {
		name string
		raw  []byte
		dup  bool
		code command.Code
	}{
		{"next batch", b2, false, ""},
		{"kept batch", b1, true, ""},
		{"forged", signedBatch(t, a, forger, 2), false, command.CodeBadSignature},
		{"junk", []byte{0xff, 0x01}, false, command.CodeBadBatch},
	}
	for _, c := range cases {
		before := freeze(t, b)
		origin, seq, dup, refused := b.CheckImport(c.raw, 1)
		assertUnchanged(t, b, before)
		if codeOf(errOrNil(refused)) != c.code || dup != c.dup {
			t.Fatalf("%s: CheckImport = %s %d dup=%v %v; want code %q dup=%v", c.name, origin, seq, dup, refused, c.code, c.dup)
		}
		if c.code == "" && (origin != "A" || seq == 0) {
			t.Fatalf("%s: CheckImport names %s batch %d", c.name, origin, seq)
		}
		g := fsm.New()
		restoreBytes(g, snapshotBytes(t, b))
		r := applyCmd(t, g, importCmd(c.raw))
		if codeOf(r.Err) != c.code || r.GetImport().GetDuplicate() != c.dup {
			t.Fatalf("%s: Apply = %v %v, CheckImport said %q dup=%v", c.name, r.Result, r.Err, c.code, c.dup)
		}
	}
}

func errOrNil(e *command.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// v3 stamps a command with command version 3.
func v3(cmd *fsmpb.Command) *fsmpb.Command {
	cmd.Version = 3
	return cmd
}

// From command version 3 an import needs signature_v2, which covers the
// export.sig: a stripped or altered export.sig, or a batch signed the old
// way only, is refused, and the honest copy is still taken afterwards.
func TestImportV3NeedsExportSigUnderSignature(t *testing.T) {
	a := regionA(t)
	keyA, derA := fedKey(t, "a1")
	body, _ := a.FederationBody(1)
	honest := mustSign(t, keyA, body, []byte("export signature of batch 1"))
	var sb fsmpb.SignedBatch
	if err := proto.Unmarshal(honest, &sb); err != nil {
		t.Fatal(err)
	}
	edit := func(change func(*fsmpb.SignedBatch)) []byte {
		c := proto.CloneOf(&sb)
		change(c)
		out, _ := proto.Marshal(c)
		return out
	}
	b := fsm.New()
	mustApply(t, b, trust("A", derA, "a1"))
	for name, raw := range map[string][]byte{
		"stripped export sig": edit(func(c *fsmpb.SignedBatch) { c.ExportSig = nil }),
		"altered export sig":  edit(func(c *fsmpb.SignedBatch) { c.ExportSig = []byte("another signature") }),
		"old signature only":  edit(func(c *fsmpb.SignedBatch) { c.SignatureV2 = nil }),
	} {
		before := freeze(t, b)
		if code := codeOf(applyCmd(t, b, v3(importCmd(raw))).Err); code != command.CodeBadSignature {
			t.Fatalf("%s: code %q, want %q", name, code, command.CodeBadSignature)
		}
		assertUnchanged(t, b, before)
		if _, _, _, refused := b.CheckImport(raw, 3); codeOf(errOrNil(refused)) != command.CodeBadSignature {
			t.Fatalf("%s: CheckImport says %v", name, refused)
		}
	}
	mustApply(t, b, v3(importCmd(honest)))
	if got, _ := b.ForeignSigned("A", 1); !bytes.Equal(got, honest) {
		t.Fatal("the honest copy is not kept as received")
	}
	// Version 1 entries in the log keep their meaning: the export.sig is
	// not under the signature they check.
	old := fsm.New()
	mustApply(t, old, trust("A", derA, "a1"))
	mustApply(t, old, importCmd(edit(func(c *fsmpb.SignedBatch) { c.ExportSig, c.SignatureV2 = nil, nil })))
}

// An origin's high-water mark outlives its batches' expiry and its trust:
// an expired or once-kept batch is never taken again, a gap is crossed only
// forward, and a late trust add starts at the operator's sequence.
func TestOriginHighWaterMark(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	a := regionA(t)
	for seq := uint32(3); seq <= 4; seq++ {
		mustApply(t, a, publish(uint64(seq)*10, now+int64(seq)*600-1, dayKey(uint64(seq)*10, today-1)))
		s := sealCmd(seq, now+int64(seq)*600, 0, 0)
		s.Seal.Origin = "A"
		mustApply(t, a, s)
	}
	keyA, derA := fedKey(t, "a1")
	batch := func(seq uint32) []byte {
		body, _ := a.FederationBody(seq)
		return mustSign(t, keyA, body, []byte{byte(seq)})
	}
	refused := func(b *fsm.FSM, seq uint32, want command.Code) {
		t.Helper()
		before := freeze(t, b)
		if code := codeOf(applyCmd(t, b, v3(importCmd(batch(seq)))).Err); code != want {
			t.Fatalf("batch %d: code %q, want %q", seq, code, want)
		}
		assertUnchanged(t, b, before)
	}
	b := fsm.New()
	mustApply(t, b, trust("A", derA, "a1"))
	mustApply(t, b, v3(importCmd(batch(1))))
	mustApply(t, b, v3(importCmd(batch(2))))
	// Every batch of A expires in B; A's batch 1 offered again is a replay.
	mustApply(t, b, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, TimeUnix: now + 30*86400,
		Expire: &fsmpb.Expire{CutoffUnix: now + 20*86400}})
	if len(b.ForeignBatches("A")) != 0 {
		t.Fatal("A's batches did not expire")
	}
	refused(b, 1, command.CodeReplayedBatch)
	refused(b, 2, command.CodeReplayedBatch)
	if next, chained := b.NextForeign("A"); next != 3 || chained {
		t.Fatalf("next after expiry: %d chained=%v, want 3 unchained", next, chained)
	}
	// Trust removed and given again: still no replay.
	mustApply(t, b, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_TRUST, RemoveTrust: &fsmpb.RemoveTrust{Region: "A"}})
	mustApply(t, b, trust("A", derA, "a1"))
	refused(b, 2, command.CodeReplayedBatch)
	// Nothing kept: the chain may go on after a gap, forward only.
	mustApply(t, b, v3(importCmd(batch(4))))
	refused(b, 3, command.CodeReplayedBatch)

	// A late trust add with a start sequence.
	late := fsm.New()
	add := trust("A", derA, "a1")
	add.PutTrust.StartSeq = 3
	mustApply(t, late, v3(add))
	if next, _ := late.NextForeign("A"); next != 3 {
		t.Fatalf("next with start 3: %d", next)
	}
	refused(late, 2, command.CodeBeforeStart)
	mustApply(t, late, v3(importCmd(batch(3))))
	mustApply(t, late, trust("A", derA, "a1")) // an update without a start keeps it
	if r := late.Trusted()[0]; r.GetStartSeq() != 3 {
		t.Fatalf("start sequence after an update: %d", r.GetStartSeq())
	}

	// Marks survive a snapshot, and so does their effect.
	g := fsm.New()
	snap := snapshotBytes(t, b)
	if err := restoreBytes(g, snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Fatal("marks do not round-trip through a snapshot")
	}
	refused(g, 2, command.CodeReplayedBatch)
}

// A region seeded from a snapshot (a restored backup) goes on with its
// federation chain: its next batch is the same, byte for byte, as the one
// the original region seals.
func TestChainGoesOnAfterRestore(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	a := regionA(t)
	g := fsm.New()
	if err := restoreBytes(g, snapshotBytes(t, a)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fsm.FSM{a, g} {
		mustApply(t, f, publish(7, now+1000, dayKey(7, today-1)))
		s := sealCmd(3, now+1200, 0, 0)
		s.Seal.Origin = "A"
		mustApply(t, f, s)
	}
	x, _ := a.FederationBody(3)
	y, ok := g.FederationBody(3)
	if !ok || !bytes.Equal(x, y) {
		t.Fatal("the restored region's next batch differs from the original's")
	}
}
