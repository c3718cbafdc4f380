package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/covid-backend/covid-backend/api"
)

// users manages the web portal's accounts through the admin API.
func users(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("users: want add or list")
	}
	switch args[0] {
	case "list":
		return list(ctx, "users list", "/v1/admin/users", args[1:], stdout)
	case "add":
		var req api.UserRequest
		var roles, passwordFile string
		c, err := subcommand("users add", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.Email, "email", "", requiredMark+"the account's email address (its sign-in name)")
			fs.StringVar(&req.Name, "name", "", "the person's name")
			fs.StringVar(&req.Provider, "provider", "", "the provider a health care worker issues codes for (none: a region operator)")
			fs.StringVar(&roles, "roles", "issue,codes", "comma-separated roles: issue, bulk, codes, users, apikeys, operator")
			fs.StringVar(&passwordFile, "password-file", "", requiredMark+"a file holding the password (at least 12 characters)")
			fs.BoolVar(&req.TOTP, "totp", false, "require a TOTP second factor; prints its otpauth:// URL once")
			fs.BoolVar(&req.Disabled, "disabled", false, "disable the account (ends its sessions)")
		})
		if err != nil {
			return err
		}
		pw, err := os.ReadFile(passwordFile)
		if err != nil {
			return fmt.Errorf("users add: --password-file: %w", err)
		}
		req.Password, req.Roles = strings.TrimRight(string(pw), "\r\n"), splitList(roles)
		var out struct {
			Email   string `json:"email"`
			TOTPURL string `json:"totp_url"`
		}
		if err := c.do(ctx, http.MethodPost, "/v1/admin/users", req, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "account %s saved\n", out.Email)
		if out.TOTPURL != "" {
			fmt.Fprintf(stdout, "second factor (add to an authenticator app, shown once):\n%s\n", out.TOTPURL)
		}
		return nil
	}
	return fmt.Errorf("users: unknown subcommand %q", args[0])
}
