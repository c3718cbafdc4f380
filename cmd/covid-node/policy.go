package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/covid-backend/covid-backend/api"
)

// policyCmd shows and changes the region policy (retention, padding, code
// lifetime), which every node follows whatever its flags say.
func policyCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("policy: want show or set")
	}
	switch args[0] {
	case "show":
		return listJSON(ctx, "policy show", "/v1/admin/policy", args[1:], stdout)
	case "set":
		var req api.PolicyRequest
		var minKeys, jitter uint
		c, err := subcommand("policy set", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.Retention, "retention", "", "how long batches and unpublished keys are kept, e.g. 336h")
			fs.StringVar(&req.CodeTTL, "code-ttl", "", "how long a one-time code stays valid, e.g. 24h")
			fs.UintVar(&minKeys, "seal-min-keys", 0, "pad batches with fewer keys up to this many")
			fs.UintVar(&jitter, "seal-padding-jitter", 0, "add up to this many padding keys more, at random")
			fs.BoolVar(&req.NoPadding, "no-padding", false, "turn padding off")
		})
		if err != nil {
			return err
		}
		if minKeys > 0 {
			v := uint32(minKeys)
			req.SealMinKeys = &v
		}
		if jitter > 0 {
			v := uint32(jitter)
			req.SealPaddingJitter = &v
		}
		var out api.PolicyView
		if err := c.do(ctx, http.MethodPut, "/v1/admin/policy", req, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	return fmt.Errorf("policy: unknown subcommand %q", args[0])
}
