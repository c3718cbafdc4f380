package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/covid-backend/covid-backend/api"
)

// serviceCmd shows, schedules and cancels the region's end of service
// (docs/operations.md, "Ending the service").
func serviceCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("service: want status, end or cancel")
	}
	var view api.ServiceView
	switch args[0] {
	case "status":
		c, err := subcommand("service status", args[1:], nil)
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodGet, "/v1/admin/service", nil, &view); err != nil {
			return err
		}
	case "end":
		var req api.ServiceRequest
		c, err := subcommand("service end", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.WindDownFrom, "wind-down-from", "", requiredMark+"from this time (RFC 3339, e.g. 2027-03-01T00:00:00Z; a time past: now) uploads, codes and the verification API are refused; files stay until their keys age out")
			fs.StringVar(&req.DeleteAfter, "delete-after", "168h", "how long after the end (the last keys aged out) submissions, codes, API keys and health care workers' accounts are deleted")
			fs.StringVar(&req.Author, "author", "", "who decided it, for the app configuration's history (default: an operator)")
		})
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodPost, "/v1/admin/service", req, &view); err != nil {
			return err
		}
	case "cancel":
		c, err := subcommand("service cancel", args[1:], nil)
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodPost, "/v1/admin/service", api.ServiceRequest{Cancel: true}, &view); err != nil {
			return err
		}
	default:
		return fmt.Errorf("service: unknown subcommand %q", args[0])
	}
	printTimeline(stdout, view)
	return nil
}

// printTimeline writes the end of service as an operator reads it.
func printTimeline(w io.Writer, v api.ServiceView) {
	fmt.Fprintf(w, "stage: %s\n", v.Stage)
	if v.WindDownFrom == "" {
		return
	}
	fmt.Fprintf(w, "scheduled: %s by %s\nuploads stop: %s\n", v.ScheduledAt, v.ScheduledBy, v.WindDownFrom)
	if v.EndedAt != "" {
		fmt.Fprintf(w, "ended: %s (the last keys aged out; the index is empty)\n", v.EndedAt)
	} else {
		fmt.Fprintf(w, "end due about: %s (when the last keys age out)\n", v.EndDue)
	}
	if d := v.Deleted; d != nil {
		fmt.Fprintf(w, "deleted: %s (%d submissions, %d codes, %d tokens, %d accounts, %d API keys)\n", v.DeletedAt, d.Submissions, d.Codes, d.Tokens, d.Accounts, d.APIKeys)
	} else {
		due := v.DeletionDue
		if t, err := time.Parse(time.RFC3339, due); err == nil && v.EndedAt == "" {
			due = "about " + t.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "deletion due: %s (%s after the end)\n", due, v.DeleteAfter)
	}
}
