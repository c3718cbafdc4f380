package command

import (
	"context"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// PutTrust trusts a region's federation keys (merged by id) with the given
// flags.
func PutTrust(ctx context.Context, a Applier, r *fsmpb.TrustedRegion) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_TRUST, PutTrust: r})
	return err
}

// RemoveTrust removes one key of a region (keyID set) or the region.
func RemoveTrust(ctx context.Context, a Applier, region, keyID string) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_REMOVE_TRUST,
		RemoveTrust: &fsmpb.RemoveTrust{Region: region, KeyId: keyID}})
	return err
}

// ImportBatch keeps a signed batch of another region, as received, if the
// state machine accepts its signature and chain.
func ImportBatch(ctx context.Context, a Applier, signed []byte) (*fsmpb.ImportResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_BATCH,
		ImportBatch: &fsmpb.ImportBatch{Signed: signed}})
	return res.GetImport(), err
}

// ImportExport imports one export file of a GAEN source (its export.bin
// and export.sig) if the state machine accepts its signature by one of the
// origin's export keys.
func ImportExport(ctx context.Context, a Applier, ie *fsmpb.ImportExport) (*fsmpb.ImportResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_EXPORT, ImportExport: ie})
	return res.GetImport(), err
}

// EFGSUploaded records that an own batch's keys went up to the EU gateway
// under tags (none: the batch held none of this region's own keys).
func EFGSUploaded(ctx context.Context, a Applier, seq uint32, tags []string, keys int) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_EFGS_UPLOADED,
		EfgsUploaded: &fsmpb.EFGSUpload{Seq: seq, Tags: tags, Keys: uint32(keys)}})
	return err
}

// ImportEFGS imports a gateway download batch whose keys the caller
// checked against the batch's audit.
func ImportEFGS(ctx context.Context, a Applier, in *fsmpb.ImportEFGS) (*fsmpb.ImportResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_IMPORT_EFGS, ImportEfgs: in})
	return res.GetImport(), err
}

// PutHubCountry registers (or replaces) a country of the stand-in gateway
// this region serves.
func PutHubCountry(ctx context.Context, a Applier, c *fsmpb.HubCountry) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_COUNTRY, PutHubCountry: c})
	return err
}

// HubUpload stores a country's upload at the hub, checked by the caller,
// and returns the gateway's answer (201, 207 or 409).
func HubUpload(ctx context.Context, a Applier, u *fsmpb.HubUpload) (*fsmpb.HubUploadResult, error) {
	res, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_HUB_UPLOAD, HubUpload: u})
	return res.GetHubUpload(), err
}

// PutHubCallback adds, replaces or removes a country's callback at the
// hub.
func PutHubCallback(ctx context.Context, a Applier, cb *fsmpb.HubCallback) error {
	_, err := a.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_CALLBACK, PutHubCallback: cb})
	return err
}
