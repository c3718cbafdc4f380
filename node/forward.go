package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// PathMembers is the member endpoint that admits, removes and promotes
// members (the api package serves it).
const PathMembers = "/v1/admin/members"

// Content type of forwarded commands and their results.
const protobufType = "application/x-protobuf"

// ApplyForwarded applies one command of a batch a follower forwarded
// (PathApplyBatch) and returns its HTTP status and answer: 200 with the
// encoded fsmpb.Result, log_index set,
// (refusals included), the same result a local write gets. It never
// forwards again: if this node is no longer leader the follower is told to
// retry (503), so a write never travels in circles.
func (n *Node) ApplyForwarded(ctx context.Context, data []byte) (int, []byte) {
	status, res, msg := n.applyForwarded(ctx, data)
	if status != http.StatusOK {
		return status, []byte(msg)
	}
	out, err := proto.Marshal(res)
	if err != nil {
		return http.StatusInternalServerError, []byte("encode result: " + err.Error())
	}
	return http.StatusOK, out
}

// Forwarder is who forwarded writes over the member port: the node id its
// certificate names, and whether it sent the region's admin token.
type Forwarder struct {
	Peer     string
	Operator bool
}

type forwarderKey struct{}

// WithForwarder tells ApplyForwardedBatch who forwards the writes.
func WithForwarder(ctx context.Context, f Forwarder) context.Context {
	return context.WithValue(ctx, forwarderKey{}, f)
}

// mayForward refuses what a forwarder may not propose: without the admin
// token only the types members forward for clients (command.ForClients),
// and a member's record of no other node.
func mayForward(ctx context.Context, cmd *fsmpb.Command) error {
	f, _ := ctx.Value(forwarderKey{}).(Forwarder)
	switch {
	case f.Operator:
		return nil
	case !command.ForClients(cmd.GetType()):
		return fmt.Errorf("%v needs the region's admin token", cmd.GetType())
	case cmd.GetType() == fsmpb.CommandType_COMMAND_TYPE_PUT_NODE && cmd.GetPutNode().GetId() != f.Peer:
		return fmt.Errorf("node %q may record only itself, not %q, without the region's admin token", f.Peer, cmd.GetPutNode().GetId())
	}
	return nil
}

func (n *Node) applyForwarded(ctx context.Context, data []byte) (int, *fsmpb.Result, string) {
	var cmd fsmpb.Command
	if err := proto.Unmarshal(data, &cmd); err != nil {
		return http.StatusBadRequest, nil, "decode command: " + err.Error()
	}
	if err := mayForward(ctx, &cmd); err != nil {
		return http.StatusForbidden, nil, err.Error()
	}
	if !n.IsLeader() {
		return http.StatusServiceUnavailable, nil, "not the leader"
	}
	res, err := n.applyLocal(ctx, &cmd)
	if err == nil {
		n.nudgeFollowers() // the follower waits to apply it (awaitApplied)
	}
	var retry errRetry
	var upgrade *command.ErrUpgradePending
	switch {
	case errors.As(err, &retry):
		return http.StatusServiceUnavailable, nil, err.Error()
	case errors.As(err, &upgrade) || errors.Is(err, ErrClockDisagrees) || errors.Is(err, ErrClockUnconfirmed):
		return http.StatusConflict, nil, err.Error()
	case err != nil:
		return http.StatusInternalServerError, nil, err.Error()
	}
	return http.StatusOK, res, ""
}

// LeaderRefused is the leader's refusal to propose a forwarded command
// that it will propose later (its clock disagrees with the region, or the
// region is being upgraded); the caller may retry.
type LeaderRefused struct {
	Leader, Message string
}

func (e *LeaderRefused) Error() string { return "leader " + e.Leader + " refused: " + e.Message }

// forwardApply forwards a command to the leader at leaderURL, within the
// next batch (forward_batch.go).
func (n *Node) forwardApply(ctx context.Context, leaderURL string, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode forwarded command: %w", err)
	}
	return n.forwardBatched(ctx, leaderURL, data)
}

// leaderOutcome judges the leader's answer to one forwarded command (or the
// transport error of sending it): the result, a refusal as *command.Error,
// errRetry for what the next attempt may pass, *LeaderRefused.
func leaderOutcome(leaderURL string, status int, body []byte, err error) (*fsmpb.Result, error) {
	switch {
	case err != nil:
		return nil, errRetry{fmt.Errorf("forward to leader %s: %w", leaderURL, err)}
	case status == http.StatusServiceUnavailable:
		return nil, errRetry{fmt.Errorf("leader %s: %s", leaderURL, body)}
	case status == http.StatusConflict:
		return nil, &LeaderRefused{Leader: leaderURL, Message: string(body)}
	case status != http.StatusOK:
		return nil, fmt.Errorf("leader %s answered %d: %s", leaderURL, status, body)
	}
	var res fsmpb.Result
	if err := proto.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("decode result from leader %s: %w", leaderURL, err)
	}
	return resultError(&res, nil)
}

// call sends an authenticated request to another member and decodes its
// JSON answer into out. A transport error is returned as error; any HTTP
// status is returned for the caller to judge.
func (n *Node) call(ctx context.Context, method, url, contentType string, body io.Reader, out any) (int, error) {
	status, b, err := n.send(ctx, method, url, contentType, body)
	if err != nil {
		return 0, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return status, fmt.Errorf("decode answer of %s (%d): %w", url, status, err)
		}
	}
	return status, nil
}

// send sends a request to another member and returns the status and body
// (at most 1 MiB) of its answer. It carries the member credential (with
// plaintext raft none) and the region's admin token: membership changes
// on the member port need both, so that a certificate of the region CA
// alone changes no member.
func (n *Node) send(ctx context.Context, method, url, contentType string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.cfg.AdminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}
