package command

import (
	"context"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Publish stores the keys of one authorized upload, or answers the first
// outcome again when the same submission id was applied before. The
// submission id, derived from the upload, is the command's request id: an
// app that sends the same upload again gets the first answer.
func Publish(ctx context.Context, a Applier, p *fsmpb.Publish) (*fsmpb.PublishResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUBLISH, Publish: p, RequestId: p.GetSubmissionId()})
	return res.GetPublish(), err
}

// Seal closes the next batch of the region's exports.
func Seal(ctx context.Context, a Applier, s *fsmpb.Seal) (*fsmpb.SealResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SEAL, Seal: s})
	return res.GetSeal(), err
}

// MaxReason bounds a roll-back's reason (characters), so that the audit
// event that records it, with the submission it names, is always taken.
const MaxReason = 500

// Revoke withdraws the keys one selector names.
func Revoke(ctx context.Context, a Applier, r *fsmpb.Revoke) (*fsmpb.RevokeResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE, Revoke: r})
	return res.GetRevoke(), err
}

// Expire removes what retention no longer needs.
func Expire(ctx context.Context, a Applier, e *fsmpb.Expire) (*fsmpb.ExpireResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE, Expire: e})
	return res.GetExpire(), err
}
