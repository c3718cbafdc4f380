package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
)

// appConfigCmd shows, sets and lists the app configuration: the document
// apps download (appconfig.Document), one version at a time.
func appConfigCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("appconfig: want show, set or history")
	}
	switch args[0] {
	case "show":
		var version uint
		c, err := subcommand("appconfig show", args[1:], func(fs *flag.FlagSet) {
			fs.UintVar(&version, "version", 0, "the version to show (default: the one in force)")
		})
		if err != nil {
			return err
		}
		if version == 0 {
			var pointer struct{ Version uint }
			if err := c.do(ctx, http.MethodGet, "/v1/appconfig", nil, &pointer); err != nil {
				return err
			}
			version = pointer.Version
		}
		var doc json.RawMessage
		if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/appconfig/v%d.json", version), nil, &doc); err != nil {
			return err
		}
		return printJSON(stdout, doc)
	case "set":
		var file string
		c, err := subcommand("appconfig set", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&file, "file", "", requiredMark+"the configuration as a JSON document (as appconfig show prints it; its version and time are left out or ignored)")
		})
		if err != nil {
			return err
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("appconfig set: %w", err)
		}
		if !json.Valid(data) {
			return fmt.Errorf("appconfig set: %s is not JSON", file)
		}
		var kept struct {
			Version uint32
			Time    string
		}
		if err := c.do(ctx, http.MethodPost, "/v1/admin/appconfig", json.RawMessage(data), &kept); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "app configuration version %d in force since %s\n", kept.Version, kept.Time)
		return nil
	case "history":
		return list(ctx, "appconfig history", "/v1/admin/appconfig/history", args[1:], stdout)
	}
	return fmt.Errorf("appconfig: unknown subcommand %q", args[0])
}
