package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// PathApplyBatch takes several forwarded commands in one request. A
// follower sends every write waiting for the leader together, so that one
// request, one TLS record and one answer carry what one request per write
// did; the leader proposes them all at once, and raft commits them in one
// append. Body: each encoded fsmpb.Command as a length-delimited frame
// (protowire bytes). Answer: for each, in order, its HTTP status (varint)
// and a frame with the encoded fsmpb.Result (200) or the message
// (ApplyForwarded).
const PathApplyBatch = "/internal/v2/apply-batch"

// Bounds of one batched forward: at most MaxForwardBatch commands and
// forwardBatchBytes of them, or one command of any size.
const (
	MaxForwardBatch   = 64
	forwardBatchBytes = 4 << 20
	// forwardSenders is how many batches a follower has in flight at once:
	// a write that finds it busy joins the next batch, as a leader's
	// proposals join its next round (propose.go).
	forwardSenders = 1
)

// forward is one write waiting to be forwarded: its encoded command, the
// caller's context (a write whose caller gave up is not sent) and where its
// outcome goes.
type forward struct {
	ctx  context.Context
	url  string
	data []byte
	done chan forwardOutcome
}

type forwardOutcome struct {
	res *fsmpb.Result
	err error
}

// forwardBatched forwards one encoded command within the next batch to the
// leader at url and waits for its outcome.
func (n *Node) forwardBatched(ctx context.Context, url string, data []byte) (*fsmpb.Result, error) {
	f := &forward{ctx: ctx, url: url, data: data, done: make(chan forwardOutcome, 1)}
	if n.forwards.push(f, forwardSenders) {
		n.goRun(func() { drain(&n.forwards, pickForwards, n.sendBatch) })
	}
	select {
	case o := <-f.done:
		return o.res, o.err
	case <-ctx.Done():
		return nil, errRetry{fmt.Errorf("forward to leader %s: %w", url, ctx.Err())}
	}
}

// pickForwards chooses the next batch: the oldest waiting writes for one
// leader, within the bounds; writes whose callers gave up are dropped.
func pickForwards(pending []*forward) (batch, rest []*forward) {
	size := 0
	for _, f := range pending {
		switch {
		case f.ctx.Err() != nil:
		case len(batch) > 0 && (f.url != batch[0].url || len(batch) == MaxForwardBatch || size+len(f.data) > forwardBatchBytes):
			rest = append(rest, f)
		default:
			batch = append(batch, f)
			size += len(f.data)
		}
	}
	return batch, rest
}

// sendBatch sends one batch and hands each write its outcome. It always
// lets the sender go on (true).
func (n *Node) sendBatch(batch []*forward) bool {
	url := batch[0].url
	var body []byte
	for _, f := range batch {
		body = protowire.AppendBytes(body, f.data)
	}
	n.metrics.forwardBatch.Observe(float64(len(batch)))
	ctx, cancel := context.WithTimeout(n.runCtx, n.cfg.WriteTimeout)
	defer cancel()
	status, reply, err := n.send(ctx, http.MethodPost, url+PathApplyBatch, protobufType, bytes.NewReader(body))
	var outcomes []forwardOutcome
	switch {
	case err == nil && status == http.StatusOK:
		outcomes, err = decodeBatchReply(url, reply, len(batch))
	default:
		_, err = leaderOutcome(url, status, reply, err)
	}
	for i, f := range batch {
		if err != nil {
			f.done <- forwardOutcome{err: err}
		} else {
			f.done <- outcomes[i]
		}
	}
	return true
}

// ApplyForwardedBatch applies the commands of a batched forward
// (PathApplyBatch) at once and returns the status and body to answer: 200
// with each command's status and answer as ApplyForwarded gives them, 400
// for a malformed batch, 503 if this node is not the leader.
func (n *Node) ApplyForwardedBatch(ctx context.Context, body []byte) (int, []byte) {
	cmds, err := decodeFrames(body, MaxForwardBatch)
	if err != nil {
		return http.StatusBadRequest, []byte("decode batch: " + err.Error())
	}
	if !n.IsLeader() {
		return http.StatusServiceUnavailable, []byte("not the leader")
	}
	type answer struct {
		status int
		body   []byte
	}
	answers := make([]answer, len(cmds))
	var wg sync.WaitGroup
	for i, data := range cmds {
		wg.Go(func() {
			status, reply := n.ApplyForwarded(ctx, data)
			answers[i] = answer{status, reply}
		})
	}
	wg.Wait()
	var out []byte
	for _, a := range answers {
		out = protowire.AppendVarint(out, uint64(a.status))
		out = protowire.AppendBytes(out, a.body)
	}
	return http.StatusOK, out
}

// decodeFrames splits length-delimited frames, at most max of them.
func decodeFrames(b []byte, max int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(out) == max {
			return nil, fmt.Errorf("more than %d commands", max)
		}
		frame, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("frame %d: %w", len(out), protowire.ParseError(n))
		}
		out = append(out, frame)
		b = b[n:]
	}
	if len(out) == 0 {
		return nil, errors.New("no command")
	}
	return out, nil
}

// decodeBatchReply reads the leader's answer to a batch of want commands
// into each command's outcome, as forwardOne judges a single answer.
func decodeBatchReply(url string, b []byte, want int) ([]forwardOutcome, error) {
	out := make([]forwardOutcome, 0, want)
	for len(b) > 0 && len(out) < want {
		status, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, fmt.Errorf("leader %s: batch answer %d: %w", url, len(out), protowire.ParseError(n))
		}
		body, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return nil, fmt.Errorf("leader %s: batch answer %d: %w", url, len(out), protowire.ParseError(m))
		}
		b = b[n+m:]
		res, err := leaderOutcome(url, int(status), body, nil)
		out = append(out, forwardOutcome{res, err})
	}
	if len(out) != want || len(b) > 0 {
		return nil, fmt.Errorf("leader %s answered a batch of %d with %d answers", url, want, len(out))
	}
	return out, nil
}
