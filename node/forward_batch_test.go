package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// A batch holds the oldest writes for one leader within the bounds, keeps
// the rest in order, drops writes whose callers gave up, and counts its
// sender out once nothing waits.
func TestForwardQueueTake(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	w := func(ctx context.Context, url string, size int) *forward {
		return &forward{ctx: ctx, url: url, data: make([]byte, size)}
	}
	many := make([]*forward, MaxForwardBatch+3)
	for i := range many {
		many[i] = w(live, "a", 10)
	}
	for _, tc := range []struct {
		name      string
		pending   []*forward
		batch     int // writes taken
		left      int // writes still waiting
		senderOut bool
	}{
		{"one", []*forward{w(live, "a", 10)}, 1, 0, false},
		{"none", nil, 0, 0, true},
		{"only given up", []*forward{w(gone, "a", 10), w(gone, "a", 10)}, 0, 0, true},
		{"given up dropped", []*forward{w(gone, "a", 10), w(live, "a", 10), w(live, "a", 10)}, 2, 0, false},
		{"another leader waits", []*forward{w(live, "a", 10), w(live, "b", 10), w(live, "a", 10)}, 2, 1, false},
		{"count bound", many, MaxForwardBatch, 3, false},
		{"byte bound", []*forward{w(live, "a", forwardBatchBytes-5), w(live, "a", 10), w(live, "a", 5)}, 2, 1, false},
		{"one large command", []*forward{w(live, "a", 2*forwardBatchBytes), w(live, "a", 10)}, 1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := batchQueue[*forward]{pending: tc.pending, senders: 1}
			batch := q.take(pickForwards)
			if len(batch) != tc.batch || len(q.pending) != tc.left {
				t.Fatalf("took %d, left %d; want %d and %d", len(batch), len(q.pending), tc.batch, tc.left)
			}
			if out := q.senders == 0; out != tc.senderOut {
				t.Fatalf("senders %d after take", q.senders)
			}
			for _, f := range batch {
				if f.url != batch[0].url || f.ctx.Err() != nil {
					t.Fatalf("batch mixes leaders or holds a write given up")
				}
			}
		})
	}
}

// A batch's frames come back as sent; malformed or oversized batches are
// refused.
func TestDecodeFrames(t *testing.T) {
	var body []byte
	for _, s := range []string{"a", "", "ccc"} {
		body = protowire.AppendBytes(body, []byte(s))
	}
	frames, err := decodeFrames(body, 3)
	if err != nil || len(frames) != 3 || string(frames[0]) != "a" || len(frames[1]) != 0 || string(frames[2]) != "ccc" {
		t.Fatalf("frames %q, %v", frames, err)
	}
	for name, tc := range map[string]struct {
		body []byte
		max  int
	}{
		"empty":     {nil, 3},
		"too many":  {body, 2},
		"truncated": {body[:len(body)-1], 3},
		"bad size":  {[]byte{0xff}, 3},
	} {
		if _, err := decodeFrames(tc.body, tc.max); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Each answer of a batch is judged as the answer to one forwarded command;
// an answer with too few or too many entries fails the whole batch.
func TestDecodeBatchReply(t *testing.T) {
	ok, _ := proto.Marshal(&fsmpb.Result{Value: &fsmpb.Result_Publish{Publish: &fsmpb.PublishResult{Inserted: 14}}})
	refused, _ := proto.Marshal(&fsmpb.Result{Refusal: &fsmpb.Refusal{Code: "key_exists", Message: "stored"}})
	var reply []byte
	for _, a := range []struct {
		status int
		body   []byte
	}{{http.StatusOK, ok}, {http.StatusOK, refused}, {http.StatusServiceUnavailable, []byte("not the leader")}, {http.StatusConflict, []byte("clock")}, {http.StatusInternalServerError, []byte("boom")}} {
		reply = protowire.AppendVarint(reply, uint64(a.status))
		reply = protowire.AppendBytes(reply, a.body)
	}
	out, err := decodeBatchReply("https://l", reply, 5)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].err != nil || out[0].res.GetPublish().GetInserted() != 14 {
		t.Errorf("accepted: %v %v", out[0].res, out[0].err)
	}
	var refusal *command.Error
	if !errors.As(out[1].err, &refusal) || refusal.Code != "key_exists" {
		t.Errorf("refusal: %v", out[1].err)
	}
	var retry errRetry
	if !errors.As(out[2].err, &retry) {
		t.Errorf("503 is not retried: %v", out[2].err)
	}
	var leaderRefused *LeaderRefused
	if !errors.As(out[3].err, &leaderRefused) {
		t.Errorf("409: %v", out[3].err)
	}
	if out[4].err == nil || errors.As(out[4].err, &retry) || !strings.Contains(out[4].err.Error(), "boom") {
		t.Errorf("500: %v", out[4].err)
	}
	for _, want := range []int{4, 6} {
		if _, err := decodeBatchReply("https://l", reply, want); err == nil {
			t.Errorf("5 answers accepted for a batch of %d", want)
		}
	}
	if _, err := decodeBatchReply("https://l", reply[:len(reply)-2], 5); err == nil {
		t.Error("a truncated answer was accepted")
	}
}

// FuzzBatchFrames holds the two decoders of batched forwards to their
// bounds for any bytes: decodeFrames never returns more than its cap of
// frames, and what it accepts decodes the same once re-encoded (sizes may
// have been sent in longer varints than needed); decodeBatchReply
// returns exactly the answers asked for, or an error.
func FuzzBatchFrames(f *testing.F) {
	f.Add(protowire.AppendBytes(protowire.AppendBytes(nil, []byte("a")), []byte("bc")), 2)
	f.Add(protowire.AppendBytes(protowire.AppendVarint(nil, 200), []byte{0x10, 0x01}), 1)
	f.Add([]byte{0xff, 0xff}, 3)
	f.Add([]byte{0x80, 0x00}, 1) // a size in a longer varint than needed
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		want = min(max(want, 1), MaxForwardBatch)
		if frames, err := decodeFrames(b, want); err == nil {
			if len(frames) == 0 || len(frames) > want {
				t.Fatalf("%d frames accepted, cap %d", len(frames), want)
			}
			var again []byte
			for _, fr := range frames {
				again = protowire.AppendBytes(again, fr)
			}
			back, err := decodeFrames(again, want)
			if err != nil || len(back) != len(frames) || len(again) > len(b) {
				t.Fatalf("frames %q of %x re-encoded as %x: %v", frames, b, again, err)
			}
			for i := range back {
				if string(back[i]) != string(frames[i]) {
					t.Fatalf("frame %d: %q came back as %q", i, frames[i], back[i])
				}
			}
		}
		if out, err := decodeBatchReply("https://l", b, want); err == nil && len(out) != want {
			t.Fatalf("%d answers for a batch of %d", len(out), want)
		}
	})
}

// A member's certificate alone (issue 21, finding 1: a POST to the member
// port created an operator account) forwards only what members forward
// for clients, and its own record; whatever changes the region needs the
// region's admin token, which every node sends and a stolen certificate
// does not carry.
func TestForwardWithoutTokenOnlyClientWrites(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bootstrap = true
	n := openLeader(t, cfg)
	defer n.Close(context.Background())
	member := WithForwarder(context.Background(), Forwarder{Peer: "n2"})
	operator := WithForwarder(context.Background(), Forwarder{Peer: "n2", Operator: true})
	user := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_USER,
		PutUser: &fsmpb.User{Email: "evil@example.org", Roles: []string{"operator"}, PasswordHash: "x"}}
	other := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_NODE,
		PutNode: &fsmpb.Node{Id: "n1", RaftAddr: "127.0.0.9:1", HttpAddr: "127.0.0.9:2", CommandVersion: command.Version}}
	self := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_NODE,
		PutNode: &fsmpb.Node{Id: "n2", RaftAddr: "127.0.0.9:3", HttpAddr: "127.0.0.9:4", CommandVersion: command.Version}}
	policy := &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, SetPolicy: &fsmpb.Policy{CodeTtlSeconds: 600}}
	cases := []struct {
		name string
		ctx  context.Context
		cmd  *fsmpb.Command
		want int
	}{
		{"operator account, certificate only", member, user, http.StatusForbidden},
		{"policy, certificate only", member, policy, http.StatusForbidden},
		{"another node's record, certificate only", member, other, http.StatusForbidden},
		{"own record, certificate only", member, self, http.StatusOK},
		{"policy with the admin token", operator, policy, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cmd.Version = command.Version
			data, err := proto.Marshal(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if status, body := n.ApplyForwarded(tc.ctx, data); status != tc.want {
				t.Fatalf("status %d (%s), want %d", status, body, tc.want)
			}
		})
	}
	if _, ok := n.fsm.User("evil@example.org"); ok {
		t.Fatal("a certificate alone created an account")
	}
}
