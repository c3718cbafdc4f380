package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/covid-backend/covid-backend/api"
)

// apiKeys manages the verification service's API keys through the admin
// API: device keys for the region's apps, admin keys for a provider's
// issuing systems, stats keys for the health authority's (or a provider's)
// statistics.
func apiKeys(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("apikeys: want add, list or revoke")
	}
	var req api.APIKeyRequest
	switch args[0] {
	case "list":
		return list(ctx, "apikeys list", "/v1/admin/apikeys", args[1:], stdout)
	case "add":
		c, err := subcommand("apikeys add", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.Name, "name", "", requiredMark+"a name for the key, unique in the region")
			fs.StringVar(&req.Kind, "kind", "device", "device (apps: /api/verify, /api/certificate), admin (a provider's systems: /api/issue...) or stats (read only: /api/stats/...)")
			fs.StringVar(&req.Provider, "provider", "", "the provider an admin key issues codes for, or whose statistics a stats key reads (none: the region's)")
		})
		if err != nil {
			return err
		}
		var out struct{ Key string }
		if err := c.do(ctx, http.MethodPost, "/v1/admin/apikeys", req, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s key %s registered; the key (shown once, send it as X-API-Key):\n%s\n", req.Kind, req.Name, out.Key)
		return nil
	case "revoke":
		c, err := subcommand("apikeys revoke", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.Name, "name", "", requiredMark+"the key's name")
		})
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodDelete, "/v1/admin/apikeys/"+url.PathEscape(req.Name), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key %s revoked\n", req.Name)
		return nil
	}
	return fmt.Errorf("apikeys: unknown subcommand %q", args[0])
}
