package command

import (
	"context"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// PutNode records how to reach a member and which command version its
// build applies.
func PutNode(ctx context.Context, a Applier, n *fsmpb.Node) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_NODE, PutNode: n})
	return err
}

// RemoveNode forgets a member's addresses.
func RemoveNode(ctx context.Context, a Applier, id string) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_NODE, RemoveNode: &fsmpb.RemoveNode{Id: id}})
	return err
}

// PutAuthority adds a health authority or updates it (keys merge by kid).
func PutAuthority(ctx context.Context, a Applier, ha *fsmpb.Authority) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_AUTHORITY, PutAuthority: ha})
	return err
}

// RemoveAuthority removes one key version of a health authority (kid set)
// or the whole authority.
func RemoveAuthority(ctx context.Context, a Applier, issuer, kid string) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_AUTHORITY,
		RemoveAuthority: &fsmpb.RemoveAuthority{Issuer: issuer, Kid: kid}})
	return err
}

// PutProvider registers a health care provider or rotates its token.
func PutProvider(ctx context.Context, a Applier, p *fsmpb.Provider) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_PROVIDER, PutProvider: p})
	return err
}

// RevokeProvider stops a provider and voids its unused codes.
func RevokeProvider(ctx context.Context, a Applier, id string) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_PROVIDER,
		RevokeProvider: &fsmpb.RevokeProvider{Id: id}})
	return err
}

// SetPolicy changes the region-wide configuration and returns it as it is
// now in force.
func SetPolicy(ctx context.Context, a Applier, p *fsmpb.Policy) (*fsmpb.Policy, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, SetPolicy: p})
	return res.GetPolicy(), err
}

// RevokeCert revokes a member certificate by its SHA-256: no node takes it
// again, whoever presents it.
func RevokeCert(ctx context.Context, a Applier, rc *fsmpb.RevokedCert) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REVOKE_CERT, RevokeCert: rc})
	return err
}

// SetAppConfig keeps a new version of the app configuration and returns it
// with its version number and time.
func SetAppConfig(ctx context.Context, a Applier, c *fsmpb.AppConfig) (*fsmpb.AppConfig, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_APP_CONFIG, SetAppConfig: c})
	return res.GetAppConfig(), err
}

// SignFiles keeps signatures the leader made once with a key whose
// signatures differ each time (an HSM's).
func SignFiles(ctx context.Context, a Applier, s *fsmpb.SignFiles) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SIGN_FILES, SignFiles: s})
	return err
}

// SetService schedules, moves or cancels the region's end of service and
// returns the service as the state now holds it.
func SetService(ctx context.Context, a Applier, s *fsmpb.SetService) (*fsmpb.Service, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_SET_SERVICE, SetService: s})
	return res.GetService(), err
}
