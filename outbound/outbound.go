// Package outbound is how a node reads from servers outside its region
// that operators name (a health authority's JWKS, a GAEN source's index
// and export files): a URL and a body that a stranger may control, so
// every read is bounded in size and time and stays on the host it names.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// NewClient is an HTTP client that trusts the system's CAs and those of
// caPEM (a server under a private CA), and gives up on a request after
// timeout.
func NewClient(caPEM []byte, timeout time.Duration) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("no CA certificate in the CA file")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: transport}, nil
}

// Get reads rawURL whole, at most limit bytes, asking for accept (none:
// any): HTTPS only unless allowHTTP (development on loopback, where a
// redirect to HTTP is followed too), no redirect to another host, an
// answer other than 200 an error. Errors name the URL without its
// credentials.
func Get(ctx context.Context, client *http.Client, rawURL string, allowHTTP bool, limit int64, accept string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return nil, errors.New("not a URL") // the text may hold credentials: not repeated
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		return nil, fmt.Errorf("%s: want an https URL", u.Redacted())
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		switch {
		case req.URL.Host != u.Host || len(via) > 3:
			return fmt.Errorf("a redirect to %s, another host", req.URL.Host)
		case req.URL.Scheme != "https" && !allowHTTP:
			return fmt.Errorf("a redirect to %s, not https", req.URL.Redacted())
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err // names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", u.Redacted(), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", u.Redacted(), limit)
	}
	return body, nil
}
