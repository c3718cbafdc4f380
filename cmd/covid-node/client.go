package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// adminClient talks to a node's admin API with the region's admin token.
type adminClient struct {
	addr      string
	tokenFile string
	caFile    string
	token     string
	http      *http.Client
}

func (a *adminClient) flags(fs *flag.FlagSet) {
	fs.StringVar(&a.addr, "addr", "http://127.0.0.1:8080", "HTTP or HTTPS URL of any node of the region")
	fs.StringVar(&a.tokenFile, "token-file", "data/admin-token", "file with the region's admin token")
	fs.StringVar(&a.caFile, "ca-file", "", "CA certificate (PEM) the node's HTTPS certificate chains to, if not a system one")
}

func (a *adminClient) init() error {
	b, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return fmt.Errorf("admin token: %w (pass --token-file)", err)
	}
	a.token = strings.TrimSpace(string(b))
	a.addr = strings.TrimRight(a.addr, "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s: no certificate in it", a.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	a.http = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	return nil
}

// do sends a request and decodes a JSON answer into out; a non-2xx answer
// becomes an error carrying the server's message.
func (a *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.addr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, e.Error)
		}
		return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// subcommand parses the flags of an operator subcommand.
func subcommand(name string, args []string, setup func(fs *flag.FlagSet)) (*adminClient, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	describe(fs, name)
	c := &adminClient{}
	c.flags(fs)
	if setup != nil {
		setup(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected arguments %v", name, fs.Args())
	}
	if err := checkRequired(name, fs); err != nil {
		return nil, err
	}
	return c, c.init()
}

// requiredMark starts the usage of a flag a command cannot go without.
const requiredMark = "required: "

// checkRequired refuses, before any request, a command whose required
// flags (usage starting with requiredMark) were not given a value.
func checkRequired(name string, fs *flag.FlagSet) error {
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, requiredMark) && f.Value.String() == f.DefValue && f.DefValue == "" {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		return fmt.Errorf("%s: %s needed (see covid-node %s --help)", name, strings.Join(missing, ", "), name)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
