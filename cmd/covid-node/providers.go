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

// providers manages health care providers through the admin API.
func providers(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("providers: want add, list or revoke")
	}
	var req api.ProviderRequest
	idFlags := func(fs *flag.FlagSet) {
		fs.StringVar(&req.ID, "id", "", requiredMark+"provider id (letters, digits, '.', '_', '-')")
	}
	switch args[0] {
	case "list":
		return list(ctx, "providers list", "/v1/admin/providers", args[1:], stdout)
	case "add":
		c, err := subcommand("providers add", args[1:], func(fs *flag.FlagSet) {
			idFlags(fs)
			fs.StringVar(&req.Name, "name", "", "the provider's name")
			fs.BoolVar(&req.Rotate, "rotate", false, "give a registered provider a new token (its current one stops working)")
		})
		if err != nil {
			return err
		}
		var out struct{ ID, Token string }
		if err := c.do(ctx, http.MethodPost, "/v1/admin/providers", req, &out); err != nil {
			return err
		}
		what := "registered"
		if req.Rotate {
			what = "given a new token (the old one no longer works)"
		}
		fmt.Fprintf(stdout, "provider %s %s; its API token (shown once, keep it secret):\n%s\n", out.ID, what, out.Token)
		return nil
	case "revoke":
		c, err := subcommand("providers revoke", args[1:], idFlags)
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodDelete, "/v1/admin/providers/"+url.PathEscape(req.ID), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "provider %s revoked\n", req.ID)
		return nil
	}
	return fmt.Errorf("providers: unknown subcommand %q", args[0])
}
