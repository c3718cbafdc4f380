package fsm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed    bool
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

// snapshotBytes takes a snapshot of f and persists it into memory.
func snapshotBytes(tb testing.TB, f *fsm.FSM) []byte {
	tb.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		tb.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		tb.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		tb.Fatalf("Persist left sink closed=%v cancelled=%v, want closed and not cancelled", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

// closeTracker records whether Restore closed its reader.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func restoreBytes(f *fsm.FSM, b []byte) error {
	return f.Restore(io.NopCloser(bytes.NewReader(b)))
}

// splitmix is the SplitMix64 finalizer: a bijection on uint64, so distinct
// inputs give distinct outputs.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// tekBytes returns 16 pseudo-random bytes, distinct for distinct n.
func tekBytes(n uint64) []byte {
	b := make([]byte, fsm.KeyLen)
	binary.BigEndian.PutUint64(b, splitmix(2*n))
	binary.BigEndian.PutUint64(b[8:], splitmix(2*n+1))
	return b
}

// pkey returns a valid key whose every field varies with n.
func pkey(n uint64) *fsmpb.Key {
	k := &fsmpb.Key{
		KeyData:          tekBytes(n),
		RollingStart:     2_800_000 + int32(n%2016)*144,
		RollingPeriod:    1 + int32(n%fsm.MaxRollingPeriod),
		TransmissionRisk: int32(n % (fsm.MaxTransmissionRisk + 1)),
		ReportType:       int32(n % (fsm.MaxReportType + 1)),
	}
	if n%2 == 0 {
		k.HasDaysSinceOnset = true
		k.DaysSinceOnset = int32(n%(2*fsm.MaxDaysSinceOnset+1)) - fsm.MaxDaysSinceOnset
	}
	return k
}

// keysFrom returns count keys pkey(first), pkey(first+1), ...
func keysFrom(first uint64, count int) []*fsmpb.Key {
	out := make([]*fsmpb.Key, count)
	for i := range out {
		out[i] = pkey(first + uint64(i))
	}
	return out
}

func subID(n uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, 0x5eb1d)
	binary.BigEndian.PutUint64(b[8:], n)
	return b
}

// publish builds a publish command for submission n.
func publish(n uint64, timeUnix int64, keys ...*fsmpb.Key) *fsmpb.Command {
	digest := make([]byte, 32)
	binary.BigEndian.PutUint64(digest, splitmix(n^0xd16e57))
	return &fsmpb.Command{
		Type:     fsmpb.CommandType_COMMAND_TYPE_PUBLISH,
		TimeUnix: timeUnix,
		Publish: &fsmpb.Publish{
			SubmissionId:      subID(n),
			AppId:             "org.example.covid",
			Issuer:            "https://ha.example.org",
			CertificateDigest: digest,
			Traveler:          n%3 == 0,
			Keys:              keys,
		},
	}
}

func putNode(id, raftAddr, httpAddr string) *fsmpb.Command {
	return &fsmpb.Command{
		Type:    fsmpb.CommandType_COMMAND_TYPE_PUT_NODE,
		PutNode: &fsmpb.Node{Id: id, RaftAddr: raftAddr, HttpAddr: httpAddr},
	}
}

func removeNode(id string) *fsmpb.Command {
	return &fsmpb.Command{
		Type:       fsmpb.CommandType_COMMAND_TYPE_REMOVE_NODE,
		RemoveNode: &fsmpb.RemoveNode{Id: id},
	}
}

func putAuthority(issuer, audience string, appIDs []string, keys ...*fsmpb.AuthorityKey) *fsmpb.Command {
	return &fsmpb.Command{
		Type: fsmpb.CommandType_COMMAND_TYPE_PUT_AUTHORITY,
		PutAuthority: &fsmpb.Authority{
			Issuer: issuer, Audience: audience, AppIds: appIDs, Keys: keys,
		},
	}
}

func removeAuthority(issuer, kid string) *fsmpb.Command {
	return &fsmpb.Command{
		Type:            fsmpb.CommandType_COMMAND_TYPE_REMOVE_AUTHORITY,
		RemoveAuthority: &fsmpb.RemoveAuthority{Issuer: issuer, Kid: kid},
	}
}

// pubKeys are DER-encoded P-256 public keys for authority tests.
var pubKeys = func() [][]byte {
	out := make([][]byte, 4)
	for i := range out {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			panic(err)
		}
		out[i] = der
	}
	return out
}()

func akey(kid string, der int, from int64) *fsmpb.AuthorityKey {
	return &fsmpb.AuthorityKey{Kid: kid, PublicKeyDer: pubKeys[der], ValidFromUnix: from}
}

// mustEncode encodes a command for the log, at version 1 unless the
// command names its version.
func mustEncode(tb testing.TB, cmd *fsmpb.Command) []byte {
	tb.Helper()
	if cmd.GetVersion() == 0 {
		cmd = proto.CloneOf(cmd)
		cmd.Version = 1
	}
	b, err := proto.Marshal(cmd)
	if err != nil {
		tb.Fatalf("Encode: %v", err)
	}
	return b
}

// response is an applied command as the tests read it: its result, and
// its refusal as an error.
type response struct {
	*fsmpb.Result
	Err error
}

func toResponse(tb testing.TB, out any) response {
	tb.Helper()
	res, ok := out.(*fsmpb.Result)
	if !ok {
		tb.Fatalf("Apply returned %T (%v), want *fsmpb.Result", out, out)
	}
	r := response{Result: res}
	if ref := res.GetRefusal(); ref != nil {
		r.Err = &command.Error{Code: command.Code(ref.GetCode()), Message: ref.GetMessage()}
	}
	return r
}

func logEntry(idx uint64, data []byte) *raft.Log {
	return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
}

// applyCmd encodes cmd, applies it as the next entry and returns the response.
func applyCmd(tb testing.TB, f *fsm.FSM, cmd *fsmpb.Command) response {
	tb.Helper()
	return toResponse(tb, f.Apply(logEntry(1, mustEncode(tb, cmd))))
}

func mustApply(tb testing.TB, f *fsm.FSM, cmd *fsmpb.Command) response {
	tb.Helper()
	r := applyCmd(tb, f, cmd)
	if r.Err != nil {
		tb.Fatalf("apply %v: %v", cmd.GetType(), r.Err)
	}
	return r
}

// codeOf returns the refusal code of err, or "" when err is not a refusal.
func codeOf(err error) command.Code {
	var e *command.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// view is everything the read views show of a state.
type view struct {
	Keys        []fsm.Key
	Submissions []fsm.Submission
	Authorities []*fsmpb.Authority
	Nodes       []*fsmpb.Node
}

func viewOf(f *fsm.FSM) view {
	v := view{Keys: f.Keys(nil), Authorities: f.Authorities(), Nodes: f.Nodes()}
	for i := uint32(0); ; i++ {
		s, ok := f.Submission(i)
		if !ok {
			break
		}
		v.Submissions = append(v.Submissions, s)
	}
	return v
}

// diffViews returns a description of the first difference, or "".
func diffViews(a, b view) string {
	if len(a.Keys) != len(b.Keys) {
		return "key count " + itoa(len(a.Keys)) + " vs " + itoa(len(b.Keys))
	}
	for i := range a.Keys {
		if a.Keys[i] != b.Keys[i] {
			return "key " + itoa(i) + " differs"
		}
	}
	if len(a.Submissions) != len(b.Submissions) {
		return "submission count " + itoa(len(a.Submissions)) + " vs " + itoa(len(b.Submissions))
	}
	for i := range a.Submissions {
		x, y := a.Submissions[i], b.Submissions[i]
		if !bytes.Equal(x.CertificateDigest, y.CertificateDigest) {
			return "submission " + itoa(i) + " certificate digest differs"
		}
		x.CertificateDigest, y.CertificateDigest = nil, nil
		if !reflect.DeepEqual(x, y) {
			return "submission " + itoa(i) + " differs"
		}
	}
	if len(a.Authorities) != len(b.Authorities) {
		return "authority count " + itoa(len(a.Authorities)) + " vs " + itoa(len(b.Authorities))
	}
	for i := range a.Authorities {
		if !proto.Equal(a.Authorities[i], b.Authorities[i]) {
			return "authority " + itoa(i) + " differs"
		}
	}
	if len(a.Nodes) != len(b.Nodes) {
		return "node count " + itoa(len(a.Nodes)) + " vs " + itoa(len(b.Nodes))
	}
	for i := range a.Nodes {
		if !proto.Equal(a.Nodes[i], b.Nodes[i]) {
			return "node " + itoa(i) + " differs"
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// frozen is f's state at one point: its view and its snapshot bytes.
type frozen struct {
	v    view
	snap []byte
}

func freeze(tb testing.TB, f *fsm.FSM) frozen {
	tb.Helper()
	return frozen{v: viewOf(f), snap: snapshotBytes(tb, f)}
}

// assertUnchanged fails when f's state differs from before.
func assertUnchanged(tb testing.TB, f *fsm.FSM, before frozen) {
	tb.Helper()
	if d := diffViews(before.v, viewOf(f)); d != "" {
		tb.Fatalf("state changed: %s", d)
	}
	if !bytes.Equal(before.snap, snapshotBytes(tb, f)) {
		tb.Fatalf("state changed: snapshot bytes differ")
	}
}
