package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/covid-backend/covid-backend/backup"
	"github.com/covid-backend/covid-backend/membertls"
)

// backupCmd writes a backup of the region's state to a file, through the
// leader (a follower's answer names it, and the request goes there),
// encrypted by the node to the operators' age recipients.
func backupCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var out, recipients string
	c, err := subcommand("backup", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "the file to write (made 0600), encrypted to --recipient")
		fs.StringVar(&recipients, "recipient", "", "comma-separated age recipients (age1…, from covid-node keygen --age) the node encrypts the backup to; required: the state holds account password hashes and second-factor secrets")
	})
	if err != nil {
		return err
	}
	if out == "" {
		return fmt.Errorf("backup: --out is required")
	}
	if _, err := backup.ParseRecipients(recipients); err != nil {
		return fmt.Errorf("backup: --recipient: %w", err)
	}
	c.http.Timeout = 30 * time.Minute
	resp, err := c.raw(ctx, http.MethodGet, "/v1/admin/backup?recipient="+url.QueryEscape(recipients), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup of %d bytes written to %s\n", n, out)
	return nil
}

// restoreCmd seeds a new region with a backup of the same region: it
// decrypts the file with the operator's age identity and sends it to the
// node, which checks its trailer under the region's key before anything.
func restoreCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var from, identityFile string
	var force bool
	c, err := subcommand("restore", args, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "a file from covid-node backup")
		fs.StringVar(&identityFile, "identity", "", "the age identity file (from covid-node keygen --age) of a recipient the backup was encrypted to")
		fs.BoolVar(&force, "force", false, "replace the state of a region that is not new")
	})
	if err != nil {
		return err
	}
	identities, err := readIdentities(identityFile)
	if err != nil {
		return fmt.Errorf("restore: --identity: %w", err)
	}
	c.http.Timeout = 30 * time.Minute
	path := "/v1/admin/restore"
	if force {
		path += "?force=true"
	}
	resp, err := c.raw(ctx, http.MethodPost, path, func() (io.Reader, error) {
		f, err := os.Open(from)
		if err != nil {
			return nil, err
		}
		r, err := backup.Unseal(f, identities)
		if err != nil {
			f.Close()
			return nil, err
		}
		return readCloser{r, f}, nil
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	return nil
}

// readIdentities reads an age identity file (mode 0600 or narrower).
func readIdentities(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, errors.New("required: backups are encrypted")
	}
	if err := membertls.CheckSecretFile(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return age.ParseIdentities(f)
}

// readCloser reads r and closes c (raw closes what it sent).
type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// raw sends a request whose answer is not JSON; a 409 that names the
// leader is sent there once. A non-2xx answer is an error with its message.
func (a *adminClient) raw(ctx context.Context, method, path string, body func() (io.Reader, error)) (*http.Response, error) {
	base := a.addr
	for attempt := 0; ; attempt++ {
		var r io.Reader
		if body != nil {
			b, err := body()
			if err != nil {
				return nil, err
			}
			if c, ok := b.(io.Closer); ok {
				defer c.Close()
			}
			r = b
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, r)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := a.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		var e struct {
			Error, Code string
			Leader      string `json:"leader_http"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode == http.StatusConflict && e.Code == "not_leader" && e.Leader != "" && attempt == 0 {
			base = strings.SplitN(a.addr, "://", 2)[0] + "://" + e.Leader
			continue
		}
		return nil, fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, e.Error)
	}
}
