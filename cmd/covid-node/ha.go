package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/covid-backend/covid-backend/api"
)

func authorities(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("ha: want add, list or remove")
	}
	switch args[0] {
	case "list":
		return haList(ctx, args[1:], stdout)
	case "add":
		return haAdd(ctx, args[1:], stdout)
	case "remove":
		var issuer, kid string
		c, err := subcommand("ha remove", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&issuer, "issuer", "", "issuer of the health authority")
			fs.StringVar(&kid, "kid", "", "remove only this key version")
		})
		if err != nil {
			return err
		}
		if issuer == "" {
			return errors.New("ha remove: --issuer is required")
		}
		path := "/v1/admin/authorities/" + url.PathEscape(issuer)
		if kid != "" {
			path += "?kid=" + url.QueryEscape(kid)
		}
		if err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s %s\n", issuer, kid)
		return nil
	}
	return fmt.Errorf("ha: unknown subcommand %q", args[0])
}

func haList(ctx context.Context, args []string, stdout io.Writer) error {
	var asJSON bool
	c, err := subcommand("ha list", args, jsonFlag(&asJSON))
	if err != nil {
		return err
	}
	var out struct{ Authorities []api.Authority }
	if err := c.do(ctx, http.MethodGet, "/v1/admin/authorities", nil, &out); err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ISSUER\tAUDIENCE\tAPPS\tKID\tVALID FROM\tVALID THROUGH")
	for _, a := range out.Authorities {
		for _, k := range a.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", a.Issuer, a.Audience, a.AppIDs, k.Kid, fmtTime(k.ValidFrom), fmtTime(k.ValidThrough))
		}
	}
	return tw.Flush()
}

func haAdd(ctx context.Context, args []string, stdout io.Writer) error {
	var a api.Authority
	var k api.AuthorityKey
	var keyFile, apps, from, through string
	var grace time.Duration
	c, err := subcommand("ha add", args, func(fs *flag.FlagSet) {
		fs.StringVar(&a.Issuer, "issuer", "", requiredMark+"the certificates' iss claim")
		fs.StringVar(&a.Audience, "audience", "", "the certificates' aud claim")
		fs.StringVar(&k.Kid, "kid", "", "key version named by the certificates' kid header (with --public-key-file)")
		fs.StringVar(&keyFile, "public-key-file", "", "PEM file with the authority's ECDSA P-256 public key (or --jwks-url)")
		fs.StringVar(&a.JWKSURL, "jwks-url", "", "instead of a key: the https URL of the authority's JWKS, which the node fetches now and the leader every --jwks-interval")
		fs.DurationVar(&grace, "jwks-grace", 0, "how long a key gone from the JWKS still verifies (default 24h)")
		fs.StringVar(&apps, "app", "", "comma-separated app ids (publish healthAuthorityID) this authority serves")
		fs.StringVar(&from, "valid-from", "", "RFC 3339 time from which the key is valid (default: always)")
		fs.StringVar(&through, "valid-through", "", "RFC 3339 time until which the key is valid (default: no end)")
	})
	if err != nil {
		return err
	}
	a.AppIDs, a.JWKSGraceSeconds = splitList(apps), int64(grace/time.Second)
	if a.JWKSURL != "" {
		if k.Kid != "" || keyFile != "" {
			return errors.New("ha add: --jwks-url or --kid with --public-key-file, not both")
		}
		if err := c.do(ctx, http.MethodPost, "/v1/admin/authorities", a, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registered %s with the keys of %s\n", a.Issuer, a.JWKSURL)
		return nil
	}
	if k.Kid == "" || keyFile == "" {
		return errors.New("ha add: --kid and --public-key-file needed, or --jwks-url (see covid-node ha add --help)")
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("ha add: --public-key-file: %w", err)
	}
	k.PublicKeyPEM = string(pem)
	if k.ValidFrom, err = parseOptionalTime(from); err != nil {
		return fmt.Errorf("ha add: --valid-from: %w", err)
	}
	if k.ValidThrough, err = parseOptionalTime(through); err != nil {
		return fmt.Errorf("ha add: --valid-through: %w", err)
	}
	a.Keys = []api.AuthorityKey{k}
	if err := c.do(ctx, http.MethodPost, "/v1/admin/authorities", a, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registered %s key %s\n", a.Issuer, k.Kid)
	return nil
}

func parseOptionalTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, s)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}
