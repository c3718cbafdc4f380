package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Forwarding as builds before command version 2 speak it, so that a region
// keeps taking writes through every member during the rolling upgrade to
// version 2: they post to PathApplyV1 and read a JSON reply with a field
// per result type and the refusal code and message at the top. Once no
// member runs such a build this file can go.

// v1Reply is the JSON reply of PathApplyV1.
type v1Reply struct {
	Publish json.RawMessage `json:"publish,omitempty"`
	Seal    json.RawMessage `json:"seal,omitempty"`
	Revoke  json.RawMessage `json:"revoke,omitempty"`
	Expire  json.RawMessage `json:"expire,omitempty"`
	Import  json.RawMessage `json:"import,omitempty"`
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
}

// ApplyForwardedV1 is ApplyForwarded for a follower of an older build.
func (n *Node) ApplyForwardedV1(ctx context.Context, data []byte) (int, []byte) {
	status, res, msg := n.applyForwarded(ctx, data)
	reply := v1Reply{Message: msg}
	if status == http.StatusOK {
		var err error
		if reply, err = encodeV1(res); err != nil {
			status, reply = http.StatusInternalServerError, v1Reply{Message: err.Error()}
		}
	}
	out, _ := json.Marshal(reply)
	return status, out
}

func encodeV1(res *fsmpb.Result) (v1Reply, error) {
	var r v1Reply
	if ref := res.GetRefusal(); ref != nil {
		r.Code, r.Message = ref.GetCode(), ref.GetMessage()
		return r, nil
	}
	var err error
	enc := func(m proto.Message) json.RawMessage {
		var b []byte
		b, err = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
		return b
	}
	switch v := res.GetValue().(type) {
	case *fsmpb.Result_Publish:
		r.Publish = enc(v.Publish)
	case *fsmpb.Result_Seal:
		r.Seal = enc(v.Seal)
	case *fsmpb.Result_Revoke:
		r.Revoke = enc(v.Revoke)
	case *fsmpb.Result_Expire:
		r.Expire = enc(v.Expire)
	case *fsmpb.Result_Import:
		r.Import = enc(v.Import)
	} // results those builds had no field for stay out
	return r, err
}

// forwardApplyV1 forwards to a leader of an older build and reads its
// reply into a Result.
func (n *Node) forwardApplyV1(ctx context.Context, leaderURL string, data []byte) (*fsmpb.Result, error) {
	status, body, err := n.send(ctx, http.MethodPost, leaderURL+PathApplyV1, protobufType, bytes.NewReader(data))
	var reply v1Reply
	if err == nil {
		err = json.Unmarshal(body, &reply)
	}
	switch {
	case err != nil:
		return nil, errRetry{fmt.Errorf("forward to leader %s: %w", leaderURL, err)}
	case status == http.StatusServiceUnavailable:
		return nil, errRetry{fmt.Errorf("leader %s: %s", leaderURL, reply.Message)}
	case status != http.StatusOK:
		return nil, fmt.Errorf("leader %s answered %d: %s", leaderURL, status, reply.Message)
	}
	res, err := decodeV1(reply)
	if err != nil {
		return nil, fmt.Errorf("decode reply of leader %s: %w", leaderURL, err)
	}
	return resultError(res, nil)
}

func decodeV1(r v1Reply) (*fsmpb.Result, error) {
	if r.Code != "" {
		return &fsmpb.Result{Refusal: &fsmpb.Refusal{Code: r.Code, Message: r.Message}}, nil
	}
	in := protojson.UnmarshalOptions{DiscardUnknown: true}
	res := &fsmpb.Result{}
	var err error
	switch {
	case r.Publish != nil:
		v := &fsmpb.PublishResult{}
		err, res.Value = in.Unmarshal(r.Publish, v), &fsmpb.Result_Publish{Publish: v}
	case r.Seal != nil:
		v := &fsmpb.SealResult{}
		err, res.Value = in.Unmarshal(r.Seal, v), &fsmpb.Result_Seal{Seal: v}
	case r.Revoke != nil:
		v := &fsmpb.RevokeResult{}
		err, res.Value = in.Unmarshal(r.Revoke, v), &fsmpb.Result_Revoke{Revoke: v}
	case r.Expire != nil:
		v := &fsmpb.ExpireResult{}
		err, res.Value = in.Unmarshal(r.Expire, v), &fsmpb.Result_Expire{Expire: v}
	case r.Import != nil:
		v := &fsmpb.ImportResult{}
		err, res.Value = in.Unmarshal(r.Import, v), &fsmpb.Result_Import{Import: v}
	}
	if err != nil {
		return nil, errors.Join(errors.New("a result of an older build"), err)
	}
	return res, nil
}
