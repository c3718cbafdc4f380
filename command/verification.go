package command

import (
	"context"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// PutAPIKey registers a device or admin key of the verification service.
func PutAPIKey(ctx context.Context, a Applier, k *fsmpb.ApiKey) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_API_KEY, PutApiKey: k})
	return err
}

// RevokeAPIKey stops a key, named by its hash.
func RevokeAPIKey(ctx context.Context, a Applier, hash []byte) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_API_KEY,
		RevokeApiKey: &fsmpb.RevokeApiKey{Hash: hash}})
	return err
}

// IssueVerificationCode records a code pair a provider issued; the result
// is the record with its times.
func IssueVerificationCode(ctx context.Context, a Applier, c *fsmpb.VerificationCode) (*fsmpb.VerificationCode, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ISSUE_VERIFICATION_CODE, IssueVerificationCode: c})
	return res.GetVerificationCode(), err
}

// ClaimCode uses up a verification code and creates its token.
func ClaimCode(ctx context.Context, a Applier, c *fsmpb.ClaimCode) (*fsmpb.VerificationToken, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_CLAIM_CODE, ClaimCode: c})
	return res.GetVerificationToken(), err
}

// ClaimToken uses up a token for its certificate.
func ClaimToken(ctx context.Context, a Applier, id string) (*fsmpb.VerificationToken, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_CLAIM_TOKEN,
		ClaimToken: &fsmpb.ClaimToken{TokenId: id}})
	return res.GetVerificationToken(), err
}

// ExpireVerificationCode expires a provider's unused code now; the result
// is the code as it stands.
func ExpireVerificationCode(ctx context.Context, a Applier, uuid, provider string) (*fsmpb.VerificationCode, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EXPIRE_VERIFICATION_CODE,
		ExpireVerificationCode: &fsmpb.ExpireVerificationCode{Uuid: uuid, Provider: provider}})
	return res.GetVerificationCode(), err
}
