package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// devFlow runs the three calls of an unmodified app against a region, with
// the lab's call before them, printing each: a lab issues a code
// (/api/issue), the app trades it for a token (/api/verify), the token and
// the HMAC of its keys for a certificate (/api/certificate), and publishes
// its keys with the certificate (/v1/publish).
func devFlow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dev-flow", flag.ContinueOnError)
	describe(fs, "dev-flow")
	addr := fs.String("addr", "http://127.0.0.1:8080", "HTTP URL of any node")
	labKey := fs.String("lab-key", "", "an admin API key of a provider (apikeys add --kind admin --provider P)")
	appKey := fs.String("app-key", "", "a device API key (apikeys add --kind device)")
	appID := fs.String("app-id", devApp, "the app id (healthAuthorityID) the certificate admits: one of the node's --verify-app-id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *labKey == "" || *appKey == "" {
		return errors.New("dev-flow: --lab-key and --app-key are required (make them with apikeys add)")
	}
	base := strings.TrimRight(*addr, "/")
	step := func(n int, what, path, key string, in any, out any) error {
		status, err := postJSON(ctx, base+path, key, in, out)
		if err != nil {
			return fmt.Errorf("dev-flow: %s: %w", what, err)
		}
		fmt.Fprintf(stdout, "%d. %-40s POST %-18s %d\n", n, what, path, status)
		if status != http.StatusOK {
			return fmt.Errorf("dev-flow: %s: %d %v", what, status, out)
		}
		return nil
	}
	var issued struct{ Code, UUID string }
	if err := step(1, "the lab issues a code", "/api/issue", *labKey, map[string]string{"testType": "confirmed",
		"symptomDate": time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly)}, &issued); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "   code %s (id %s)\n", issued.Code, issued.UUID)
	var token struct{ Token, TestType string }
	if err := step(2, "the app trades the code for a token", "/api/verify", *appKey, map[string]string{"code": issued.Code}, &token); err != nil {
		return err
	}
	req, mac, err := publish.RandomKeys(*appID, publish.MaxRandomKeys, time.Now())
	if err != nil {
		return fmt.Errorf("dev-flow: %w", err)
	}
	var cert struct{ Certificate string }
	if err := step(3, "the app gets a certificate for its keys", "/api/certificate", *appKey, map[string]string{"token": token.Token, "ekeyhmac": mac}, &cert); err != nil {
		return err
	}
	req.VerificationPayload = cert.Certificate
	var published publish.Response
	if err := step(4, "the app publishes its keys", "/v1/publish", "", req, &published); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "   %d keys inserted; they are downloadable once sealed and no longer valid\n", published.InsertedExposures)
	return nil
}

// postJSON posts in as JSON (with an X-API-Key if key is set) and decodes
// the answer, whatever its status, into out.
func postJSON(ctx context.Context, url, key string, in, out any) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode the answer (%d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}
