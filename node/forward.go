package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Paths of the member-to-member endpoints that the api package serves.
const (
	PathApply   = "/internal/v1/apply"
	PathMembers = "/v1/admin/members"
)

// ApplyReply carries a forwarded command's outcome back to the follower.
type ApplyReply struct {
	Publish *fsm.PublishResult `json:"publish,omitempty"`
	Seal    *fsm.SealResult    `json:"seal,omitempty"`
	Revoke  *fsm.RevokeResult  `json:"revoke,omitempty"`
	Expire  *fsm.ExpireResult  `json:"expire,omitempty"`
	Import  *fsm.ImportResult  `json:"import,omitempty"`
	Code    fsm.Code           `json:"code,omitempty"`
	Message string             `json:"message,omitempty"`
}

// ApplyForwarded applies a command that a follower forwarded. It never
// forwards again: if this node is no longer leader the follower is told to
// retry (HTTP 503), so a write never travels in circles.
func (n *Node) ApplyForwarded(ctx context.Context, data []byte) (int, ApplyReply) {
	var cmd fsmpb.Command
	if err := proto.Unmarshal(data, &cmd); err != nil {
		return http.StatusBadRequest, ApplyReply{Message: "decode command: " + err.Error()}
	}
	if !n.IsLeader() {
		return http.StatusServiceUnavailable, ApplyReply{Message: "not the leader"}
	}
	val, err := n.applyLocal(ctx, &cmd)
	var refused *fsm.Error
	var retry errRetry
	switch {
	case errors.As(err, &refused):
		return http.StatusOK, ApplyReply{Code: refused.Code, Message: refused.Message}
	case errors.As(err, &retry):
		return http.StatusServiceUnavailable, ApplyReply{Message: err.Error()}
	case err != nil:
		return http.StatusInternalServerError, ApplyReply{Message: err.Error()}
	}
	reply := ApplyReply{}
	switch v := val.(type) {
	case fsm.PublishResult:
		reply.Publish = &v
	case fsm.SealResult:
		reply.Seal = &v
	case fsm.RevokeResult:
		reply.Revoke = &v
	case fsm.ExpireResult:
		reply.Expire = &v
	case fsm.ImportResult:
		reply.Import = &v
	}
	return http.StatusOK, reply
}

func (n *Node) forwardApply(ctx context.Context, leaderURL string, cmd *fsmpb.Command) (any, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode forwarded command: %w", err)
	}
	var reply ApplyReply
	status, err := n.call(ctx, http.MethodPost, leaderURL+PathApply, "application/x-protobuf", bytes.NewReader(data), &reply)
	switch {
	case err != nil:
		return nil, errRetry{fmt.Errorf("forward to leader %s: %w", leaderURL, err)}
	case status == http.StatusServiceUnavailable:
		return nil, errRetry{fmt.Errorf("leader %s: %s", leaderURL, reply.Message)}
	case status != http.StatusOK:
		return nil, fmt.Errorf("leader %s answered %d: %s", leaderURL, status, reply.Message)
	case reply.Code != "":
		return nil, &fsm.Error{Code: reply.Code, Message: reply.Message}
	case reply.Publish != nil:
		return *reply.Publish, nil
	case reply.Seal != nil:
		return *reply.Seal, nil
	case reply.Revoke != nil:
		return *reply.Revoke, nil
	case reply.Expire != nil:
		return *reply.Expire, nil
	case reply.Import != nil:
		return *reply.Import, nil
	}
	return nil, nil
}

// call sends an authenticated request to another member and decodes its
// JSON answer into out. A transport error is returned as error; any HTTP
// status is returned for the caller to judge.
func (n *Node) call(ctx context.Context, method, url, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+n.cfg.AdminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer of %s (%d): %w", url, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, nil
}
