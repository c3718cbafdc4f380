package fsm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// gaenSource trusts origin as a GAEN source whose files key id/version
// signs (PKIX DER).
func gaenSource(origin string, der []byte, id, version string) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST, PutTrust: &fsmpb.TrustedRegion{
		Region: origin, Kind: fsm.TrustGAENExport, Merge: true, Gaen: &fsmpb.GAENSource{
			IndexUrl: "https://exports.example/index.txt", ExportRoot: "https://exports.example/", PollSeconds: 300,
			Keys: []*fsmpb.ExportKey{{KeyId: id, KeyVersion: version, PublicKeyDer: der}}}}}
}

func importExport(origin, name string, d *export.Decoded) *fsmpb.Command {
	return &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_EXPORT,
		ImportExport: &fsmpb.ImportExport{Origin: origin, Name: name, Bin: d.Bin, Sig: d.Sig}}
}

// golden reads an export file of the reference key server and the DER of
// a PEM public key from testdata/gaen.
func golden(t *testing.T, zipName, pemName string) (*export.Decoded, []byte) {
	t.Helper()
	data, err := os.ReadFile("../testdata/gaen/" + zipName)
	if err != nil {
		t.Fatal(err)
	}
	d, err := export.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile("../testdata/gaen/" + pemName)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := export.ParsePublicKeyPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return d, der
}

// signedFile makes an export file of keys over [start, end) signed by a
// new P-256 key, and returns it with the key's DER.
func signedFile(t *testing.T, start, end int64, keys ...*fsmpb.Key) (*export.Decoded, []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := export.File{Start: time.Unix(start, 0), End: time.Unix(end, 0), Region: "G", BatchNum: 1, BatchSize: 1}
	for _, k := range keys {
		f.Keys = append(f.Keys, export.Key{Data: [16]byte(k.GetKeyData()), RollingStart: k.GetRollingStart(),
			RollingPeriod: k.GetRollingPeriod(), TransmissionRisk: k.GetTransmissionRisk(), ReportType: k.GetReportType()})
	}
	data, err := export.Encode(f, []export.SigningKey{{Private: priv, KeyID: "g1", KeyVersion: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := export.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return d, der
}

// A real export of the reference key server is imported under its
// signature: its 5,617 keys become this region's pending keys as one
// submission of the origin; the same file again changes nothing, and a
// file altered, signed by another key, of an untrusted origin, ended
// before the retention window or under a name kept with other content is
// refused, changing nothing.
func TestImportGoldenExport(t *testing.T) {
	d, der := golden(t, "server-export-5617-keys.zip", "export-key-310-v1.pub.pem")
	now := d.File.End.Unix() + 3600
	at := func(c *fsmpb.Command) *fsmpb.Command {
		c.Version, c.TimeUnix = command.Version, now
		return c
	}
	f := fsm.New()
	mustApply(t, f, at(gaenSource("US", der, "310", "v1")))
	res := mustApply(t, f, at(importExport("US", "exposureKeyExport-US/1.zip", d)))
	if got := res.GetImport(); got.GetMerged() != 5617 || got.GetFile() != "exposureKeyExport-US/1.zip" || got.GetDuplicate() {
		t.Fatalf("import: %v", got)
	}
	if n := len(f.Keys(nil)); n != 5617 {
		t.Fatalf("%d keys held, want 5617", n)
	}
	sub, ok := f.Submission(0)
	if !ok || sub.Issuer != "import:US" || sub.KeyCount != 5617 || sub.TimeUnix%fsm.SubmissionTimeStep != 0 {
		t.Fatalf("submission %+v %v", sub, ok)
	}
	if !f.ImportedFile("US", "exposureKeyExport-US/1.zip") {
		t.Fatal("file not recorded")
	}
	before := freeze(t, f)
	if again := mustApply(t, f, at(importExport("US", "exposureKeyExport-US/1.zip", d))); !again.GetImport().GetDuplicate() {
		t.Fatalf("same file again: %v", again)
	}
	assertUnchanged(t, f, before)

	other, _ := golden(t, "generated-250-1-of-3.zip", "export-key-310-v1.pub.pem")
	foreignKey, _ := golden(t, "example-2-records.zip", "example-2-records.pub.pem")
	tampered := *d
	tampered.Bin = append([]byte(nil), d.Bin...)
	tampered.Bin[len(tampered.Bin)-40] ^= 1
	for _, tc := range []struct {
		name string
		cmd  *fsmpb.Command
		want command.Code
	}{
		{"altered", importExport("US", "exposureKeyExport-US/2.zip", &tampered), command.CodeBadSignature},
		{"other key", importExport("US", "exposureKeyExport-US/3.zip", foreignKey), command.CodeBadSignature},
		{"untrusted origin", importExport("CA", "exposureKeyExport-CA/1.zip", d), command.CodeUnknownRegion},
		{"name kept with other content", importExport("US", "exposureKeyExport-US/1.zip", other), command.CodeBatchConflict},
		{"no name", importExport("US", "", d), command.CodeBadBatch},
		{"not an export", importExport("US", "x.zip", &export.Decoded{Bin: []byte("EK Export v1    junk"), Sig: d.Sig}), command.CodeBadBatch},
	} {
		if r := applyCmd(t, f, at(tc.cmd)); codeOf(r.Err) != tc.want {
			t.Fatalf("%s: %v, want %s", tc.name, r.Err, tc.want)
		}
		if dup, refused := f.CheckImportExport(tc.cmd.GetImportExport(), now); dup || refused == nil || refused.Code != tc.want {
			t.Fatalf("%s: check says %v %v, want %s", tc.name, dup, refused, tc.want)
		}
	}
	assertUnchanged(t, f, before)

	late := at(importExport("US", "exposureKeyExport-US/1.zip", d))
	late.TimeUnix = now + 15*86_400
	fresh := fsm.New()
	mustApply(t, fresh, at(gaenSource("US", der, "310", "v1")))
	if r := applyCmd(t, fresh, late); codeOf(r.Err) != command.CodeFileTooOld {
		t.Fatalf("a file past retention: %v", r.Err)
	}
}

// Imported files age out with retention and are forgotten with their
// keys.
func TestImportedFilesAgeOut(t *testing.T) {
	const today = 20_000
	t0 := int64(today * 86_400)
	d, der := signedFile(t, t0-3600, t0, dayKey(1, today-2), dayKey(2, today-3))
	f := fsm.New()
	cmds := []*fsmpb.Command{gaenSource("G", der, "g1", "v1"), importExport("G", "g/1.zip", d)}
	for _, c := range cmds {
		c.Version, c.TimeUnix = command.Version, t0+60
		mustApply(t, f, c)
	}
	if n := len(f.Keys(nil)); n != 2 {
		t.Fatalf("%d keys, want 2", n)
	}
	expire := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, Version: command.Version,
		TimeUnix: t0 + 15*86_400, Expire: &fsmpb.Expire{CutoffUnix: t0 + 1}}
	mustApply(t, f, expire)
	if f.ImportedFile("G", "g/1.zip") || len(f.ImportedFiles("G")) != 0 {
		t.Fatal("an aged-out file is still recorded")
	}
}

// A GAEN source is refused unless it merges, names http(s) URLs, polls
// within bounds and has distinct P-256 export keys; a region of this
// project and a GAEN source never share a name.
func TestPutGAENSourceRefusals(t *testing.T) {
	_, der := golden(t, "example-2-records.zip", "example-2-records.pub.pem")
	_, edDER := fedKey(t, "a1")
	ok := func() *fsmpb.Command {
		c := gaenSource("US", der, "some_id", "1")
		c.Version = command.Version
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(*fsmpb.TrustedRegion)
	}{
		{"serve", func(r *fsmpb.TrustedRegion) { r.Serve = true }},
		{"no merge", func(r *fsmpb.TrustedRegion) { r.Merge = false }},
		{"unknown kind", func(r *fsmpb.TrustedRegion) { r.Kind = "efgs" }},
		{"ftp index", func(r *fsmpb.TrustedRegion) { r.Gaen.IndexUrl = "ftp://exports.example/index.txt" }},
		{"no root", func(r *fsmpb.TrustedRegion) { r.Gaen.ExportRoot = "" }},
		{"poll every second", func(r *fsmpb.TrustedRegion) { r.Gaen.PollSeconds = 1 }},
		{"no key", func(r *fsmpb.TrustedRegion) { r.Gaen.Keys = nil }},
		{"Ed25519 key", func(r *fsmpb.TrustedRegion) { r.Gaen.Keys[0].PublicKeyDer = edDER }},
		{"same key twice", func(r *fsmpb.TrustedRegion) { r.Gaen.Keys = append(r.Gaen.Keys, r.Gaen.Keys[0]) }},
	} {
		f := fsm.New()
		c := ok()
		tc.edit(c.GetPutTrust())
		if r := applyCmd(t, f, c); codeOf(r.Err) != command.CodeInvalidCommand || len(f.Trusted()) != 0 {
			t.Fatalf("%s: %v, trusted %v", tc.name, r.Err, f.Trusted())
		}
	}
	f := fsm.New()
	mustApply(t, f, ok())
	region := trust("US", edDER, "a1")
	region.Version = command.Version
	if r := applyCmd(t, f, region); codeOf(r.Err) != command.CodeInvalidCommand {
		t.Fatalf("a region named as a GAEN source: %v", r.Err)
	}
}
