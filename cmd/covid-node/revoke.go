package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/covid-backend/covid-backend/api"
)

// revoke withdraws keys through the admin API.
func revoke(ctx context.Context, args []string, stdout io.Writer) error {
	var req api.RevokeRequest
	var keys, since string
	c, err := subcommand("revoke", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Reason, "reason", "", "why (required, kept with the revocation)")
		fs.StringVar(&req.SubmissionID, "submission", "", "roll back this submission (hex id from 'covid-node submissions')")
		fs.StringVar(&keys, "key", "", "comma-separated base64 keys to revoke")
		fs.StringVar(&req.Issuer, "issuer", "", "revoke everything this health authority's certificates authorized")
		fs.StringVar(&req.Provider, "provider", "", "revoke everything this provider's codes authorized")
		fs.StringVar(&req.Code, "code", "", "revoke the upload this one-time code authorized")
		fs.StringVar(&since, "since", "", "with --issuer or --provider: only since this RFC 3339 time")
	})
	if err != nil {
		return err
	}
	req.Keys = splitList(keys)
	if req.Since, err = parseOptionalTime(since); err != nil {
		return fmt.Errorf("revoke: --since: %w", err)
	}
	var out json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/v1/admin/revocations", req, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return nil
}
