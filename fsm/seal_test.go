package fsm_test

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

const day = 144 // intervals

// sealCmd builds a seal of batch seq at time t with n random padding keys.
func sealCmd(seq uint32, t int64, target uint32, n int) *fsmpb.Command {
	cmd := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL, TimeUnix: t,
		Seal: &fsmpb.Seal{Seq: seq, TargetKeys: target}}
	for i := range n {
		cmd.Seal.Padding = append(cmd.Seal.Padding, tekBytes(1_000_000+uint64(seq)*10_000+uint64(i)))
	}
	return cmd
}

// dayKey is a key valid for the whole day d (in days since the epoch).
func dayKey(n uint64, d int32) *fsmpb.Key {
	k := pkey(n)
	k.RollingStart, k.RollingPeriod = d*day, day
	return k
}

func TestSealPublishesOnlyExpiredKeys(t *testing.T) {
	const today = 20_000 // days since the epoch
	now := int64(today*day*600 + 3600)
	f := fsm.New()
	mustApply(t, f, publish(1, now-100, dayKey(1, today-2), dayKey(2, today-1), dayKey(3, today)))
	r := mustApply(t, f, sealCmd(1, now, 0, 0))
	res := r.GetSeal()
	if res.Seq != 1 || res.Keys != 2 || res.Padding != 0 {
		t.Fatalf("seal 1: %+v", res)
	}
	keys, _, ok := f.BatchKeys(1)
	if !ok || len(keys) != 2 {
		t.Fatalf("batch 1 keys %v %v", keys, ok)
	}
	for _, k := range keys {
		if bytes.Equal(k.Data[:], tekBytes(3)) {
			t.Fatal("today's key, still valid, was published")
		}
		if k.Batch != 1 {
			t.Fatalf("key %x has batch %d, want 1", k.Data[:4], k.Batch)
		}
	}
	if waiting := f.Keys(func(k fsm.Key) bool { return k.Batch == 0 }); len(waiting) != 1 {
		t.Fatalf("%d keys wait for sealing, want 1", len(waiting))
	}
	// Nothing new has expired: the seal is refused and changes nothing.
	before := freeze(t, f)
	if code := codeOf(applyCmd(t, f, sealCmd(2, now+60, 0, 0)).Err); code != command.CodeNothingToSeal {
		t.Fatalf("empty seal: code %q", code)
	}
	assertUnchanged(t, f, before)
	// A retried or stale seal is refused.
	if code := codeOf(applyCmd(t, f, sealCmd(1, now+60, 0, 0)).Err); code != command.CodeStaleSeal {
		t.Fatalf("stale seal: code %q", code)
	}
	assertUnchanged(t, f, before)
	// The next day today's key has expired and goes into batch 2.
	r = mustApply(t, f, sealCmd(2, now+day*600, 0, 0))
	if res := r.GetSeal(); res.Seq != 2 || res.Keys != 1 {
		t.Fatalf("seal 2: %+v", res)
	}
	infos := f.Batches()
	if len(infos) != 2 || infos[1].StartUnix != infos[0].EndUnix || infos[0].StartUnix != now-100 {
		t.Fatalf("batch windows %+v", infos)
	}
}

func TestSealPadding(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	cases := []struct {
		name        string
		real        int
		target      uint32
		supplied    int
		wantPadding int
	}{
		{"pads up to the target", 3, 10, 20, 7},
		{"no padding above the target", 12, 10, 20, 0},
		{"uses what the leader supplied", 3, 10, 4, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fsm.New()
			var keys []*fsmpb.Key
			for i := range tc.real {
				keys = append(keys, dayKey(uint64(i+1), today-1-int32(i%14)))
			}
			mustApply(t, f, publish(1, now-100, keys...))
			res := mustApply(t, f, sealCmd(1, now, tc.target, tc.supplied)).GetSeal()
			if int(res.GetKeys()) != tc.real || int(res.GetPadding()) != tc.wantPadding {
				t.Fatalf("seal: %+v", res)
			}
			got, _, _ := f.BatchKeys(1)
			if len(got) != tc.real+tc.wantPadding {
				t.Fatalf("batch holds %d keys", len(got))
			}
			for i := 1; i < len(got); i++ {
				if bytes.Compare(got[i-1].Data[:], got[i].Data[:]) >= 0 {
					t.Fatal("batch keys not sorted")
				}
			}
			if f.NumKeys() != tc.real {
				t.Fatalf("padding entered the key set: %d keys", f.NumKeys())
			}
		})
	}
}

// Padding copies the metadata of the real key the leader picked for it
// (version 3), not the real keys round robin: round robin makes every group
// of keys with the same metadata a multiple of (padding+real)/real, which
// gives the real count away.
func TestSealPaddingMetadataFollowsPicks(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	groups := func(picks []uint32) []int {
		f := fsm.New()
		mustApply(t, f, publish(1, now-100, dayKey(1, today-1), dayKey(2, today-2), dayKey(3, today-3)))
		cmd := sealCmd(1, now, 33, 30)
		cmd.Seal.PaddingPicks = picks
		if picks != nil {
			cmd.Version = 3
		}
		mustApply(t, f, cmd)
		got, _, _ := f.BatchKeys(1)
		by := map[int32]int{}
		for _, k := range got {
			by[k.RollingStart]++
		}
		var sizes []int
		for _, n := range by {
			sizes = append(sizes, n)
		}
		slices.Sort(sizes)
		return sizes
	}
	if got := groups(nil); !slices.Equal(got, []int{11, 11, 11}) {
		t.Fatalf("round robin: groups %v, want 11 each", got)
	}
	picks := make([]uint32, 30)
	want := []int{1, 1, 1}
	for i := range picks {
		picks[i] = uint32(i*i*7 + 3)
		want[picks[i]%3]++
	}
	slices.Sort(want)
	if got := groups(picks); !slices.Equal(got, want) {
		t.Fatalf("picked: groups %v, want %v", got, want)
	}
}

// Padding that collides with a stored key is skipped, deterministically.
func TestSealPaddingSkipsCollisions(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	f := fsm.New()
	mustApply(t, f, publish(1, now-100, dayKey(1, today-1)))
	cmd := sealCmd(1, now, 3, 0)
	cmd.Seal.Padding = [][]byte{tekBytes(1), tekBytes(500), tekBytes(500), {1, 2, 3}, tekBytes(501)}
	res := mustApply(t, f, cmd).GetSeal()
	if res.Padding != 2 {
		t.Fatalf("padding %d, want 2 (stored key, duplicate and short key skipped)", res.Padding)
	}
}

// Batches and the pending set survive a snapshot round trip, and the
// restored state seals the same next batch.
func TestSealSnapshotRoundTrip(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	f := fsm.New()
	mustApply(t, f, publish(1, now-100, dayKey(1, today-2), dayKey(2, today)))
	mustApply(t, f, sealCmd(1, now, 5, 10))
	mustApply(t, f, publish(2, now+10, dayKey(3, today-1), dayKey(4, today)))
	snap := snapshotBytes(t, f)
	g := fsm.New()
	if err := restoreBytes(g, snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Fatal("restored state snapshots differently")
	}
	for _, x := range []*fsm.FSM{f, g} {
		mustApply(t, x, sealCmd(2, now+2*day*600, 0, 0))
	}
	if !bytes.Equal(snapshotBytes(t, f), snapshotBytes(t, g)) {
		t.Fatal("original and restored states diverged after the next seal")
	}
	if g.LastBatch() != 2 {
		t.Fatalf("last batch %d", g.LastBatch())
	}
}

// A version 2 seal records the export keys in force, and they survive a
// snapshot; a version 1 seal records none (the builds that wrote it kept
// none).
func TestSealRecordsSigners(t *testing.T) {
	const today = 20_000
	now := int64(today*day*600 + 3600)
	signers := []*fsmpb.ExportSigner{{KeyId: "b", KeyVersion: "v2"}, {KeyId: "a", KeyVersion: "v1"}}
	for _, version := range []uint32{1, 2} {
		f := fsm.New()
		mustApply(t, f, publish(1, now-100, dayKey(1, today-2)))
		seal := sealCmd(1, now, 0, 0)
		seal.Version, seal.Seal.Signers = version, signers
		mustApply(t, f, seal)
		g := fsm.New()
		if err := restoreBytes(g, snapshotBytes(t, f)); err != nil {
			t.Fatal(err)
		}
		for name, x := range map[string]*fsm.FSM{"applied": f, "restored": g} {
			got := x.Batches()[0].Signers
			want := signers
			if version == 1 {
				want = nil
			}
			if len(got) != len(want) {
				t.Fatalf("version %d, %s: signers %v, want %v", version, name, got, want)
			}
			for i := range want {
				if !proto.Equal(got[i], want[i]) {
					t.Fatalf("version %d, %s: signers %v, want %v", version, name, got, want)
				}
			}
		}
	}
}
