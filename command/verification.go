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

// PutUser creates or changes a portal account; the result is the account.
func PutUser(ctx context.Context, a Applier, u *fsmpb.User) (*fsmpb.User, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_USER, PutUser: u})
	return res.GetUser(), err
}

// AcceptInvite sets an invited account's password, once; the result is
// the account.
func AcceptInvite(ctx context.Context, a Applier, ai *fsmpb.AcceptInvite) (*fsmpb.User, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ACCEPT_INVITE, AcceptInvite: ai})
	return res.GetUser(), err
}

// Login records a sign-in's outcome, or ends every session of an account.
func Login(ctx context.Context, a Applier, l *fsmpb.Login) (*fsmpb.User, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_LOGIN, Login: l})
	return res.GetUser(), err
}

// Audit records an action in the audit log.
func Audit(ctx context.Context, a Applier, e *fsmpb.AuditEvent) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_AUDIT, Audit: e})
	return err
}
