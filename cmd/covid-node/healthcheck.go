package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// healthcheck asks a node whether it is ready (GET /readyz), for a
// container's HEALTHCHECK: exit status 0 when it is, 1 when not. The URL
// is --addr, else $COVID_API_URL (a container sets it to where its node
// listens), else the default address.
func healthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	describe(fs, "healthcheck")
	def := "http://127.0.0.1:8080"
	if env := os.Getenv("COVID_API_URL"); env != "" {
		def = env
	}
	addr := fs.String("addr", def, "the node's API URL (default $COVID_API_URL, else http://127.0.0.1:8080)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *addr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: not ready (%d)", resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
