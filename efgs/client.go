package efgs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// ContentType is what the client sends and accepts.
const ContentType = "application/protobuf; version=1.0"

// maxBody bounds what the client reads of an answer: a download batch of
// 5,000 keys is about 200 KB.
const maxBody = 8 << 20

// Client speaks to a gateway (EFGS, or this project's stand-in) for one
// country: HTTP is a client that shows the country's authentication
// certificate (mutual TLS), Cert and Key sign its uploads.
type Client struct {
	// Base is the gateway's URL up to its paths (…/efgs).
	Base    string
	HTTP    *http.Client
	Country string
	Cert    *x509.Certificate
	Key     crypto.Signer
	// HubKey, when set, is the stand-in hub's public key: every download
	// batch must carry its signature (HubSignatureHeader).
	HubKey ed25519.PublicKey
}

// Upload sends keys of the country (at most MaxUploadKeys) under the tag
// of their body (Tag), so that sending them again after an unknown
// outcome is answered 409 and stores nothing twice. A 207 stored nothing:
// the keys the gateway could insert and those that failed go again,
// re-signed under their own tag, until the gateway stores them or holds
// them all already. It returns the tags under which keys were stored.
func (c *Client) Upload(ctx context.Context, keys []*efgspb.DiagnosisKey) ([]string, error) {
	var stored []string
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt == 3 {
			return stored, errors.New("efgs: the gateway answered 207 three times")
		}
		body, err := proto.Marshal(&efgspb.DiagnosisKeyBatch{Keys: keys})
		if err != nil {
			return stored, fmt.Errorf("efgs: upload: %w", err)
		}
		sig, err := SignBatch(keys, c.Cert, c.Key)
		if err != nil {
			return stored, err
		}
		tag := Tag(body)
		status, answer, err := c.do(ctx, http.MethodPost, "/diagnosiskeys/upload", body, map[string]string{
			"batchTag": tag, "batchSignature": sig, "Content-Type": ContentType, "Accept": "application/json"})
		if err != nil {
			return stored, err
		}
		switch status {
		case http.StatusCreated:
			return append(stored, tag), nil
		case http.StatusConflict: // the tag was stored before: an earlier try took
			return append(stored, tag), nil
		case http.StatusMultiStatus:
			m, err := ParseMultiStatus(answer, len(keys))
			if err != nil {
				return stored, err
			}
			keys = m.Retry(keys) // none left: the gateway holds them all
		default:
			return stored, fmt.Errorf("efgs: upload: %d %s", status, message(answer))
		}
	}
	return stored, nil
}

// ErrGone is a download of a day before the gateway keeps batches (410).
var ErrGone = errors.New("efgs: the gateway keeps no batches of that day any more")

// Batch is a download batch: its keys (none of the country's own), its
// tag, and the tag after it ("" at the end of the chain).
type Batch struct {
	Keys      []*efgspb.DiagnosisKey
	Tag, Next string
}

// Download fetches the batch tag of date's chain (tag "": the day's first
// batch). 404 is (nil, nil): no batch; 410 is ErrGone. An answer for
// another tag than the one asked is an error.
func (c *Client) Download(ctx context.Context, date time.Time, tag string) (*Batch, error) {
	headers := map[string]string{"Accept": ContentType}
	if tag != "" {
		headers["batchTag"] = tag
	}
	status, body, h, err := c.doHeaders(ctx, http.MethodGet, "/diagnosiskeys/download/"+date.UTC().Format(time.DateOnly), nil, headers)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNotFound:
		return nil, nil
	case status == http.StatusGone:
		return nil, fmt.Errorf("%w: %s", ErrGone, date.UTC().Format(time.DateOnly))
	case status != http.StatusOK:
		return nil, fmt.Errorf("efgs: download %s %s: %d %s", date.UTC().Format(time.DateOnly), tag, status, message(body))
	case tag != "" && h.Get("batchTag") != tag:
		return nil, fmt.Errorf("efgs: asked for batch %s, the gateway answered %s", tag, h.Get("batchTag"))
	}
	if c.HubKey != nil {
		if err := VerifyHubBatch(c.HubKey, date.UTC().Format(time.DateOnly), tag, c.Country, h.Get("batchTag"), h.Get("nextBatchTag"), body, h.Get(HubSignatureHeader)); err != nil {
			return nil, fmt.Errorf("%w (batch %s)", err, h.Get("batchTag"))
		}
	}
	batch := &efgspb.DiagnosisKeyBatch{}
	if err := proto.Unmarshal(body, batch); err != nil {
		return nil, fmt.Errorf("efgs: download: %w", err)
	}
	next := h.Get("nextBatchTag")
	if next == "null" {
		next = ""
	}
	return &Batch{Keys: batch.GetKeys(), Tag: h.Get("batchTag"), Next: next}, nil
}

// TagDay is the UTC day a gateway's download tag (yyyyMMdd-N) names, the
// day to ask for it: the chain crosses midnight, and the next tag after a
// day's last batch is the next day's first.
func TagDay(tag string) (time.Time, bool) {
	day, _, ok := strings.Cut(tag, "-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", day)
	return t, err == nil
}

// Audit fetches the audit of a download batch, to check its keys
// (VerifyDownload).
func (c *Client) Audit(ctx context.Context, date time.Time, tag string) ([]AuditEntry, error) {
	status, body, err := c.do(ctx, http.MethodGet, "/diagnosiskeys/audit/download/"+date.UTC().Format(time.DateOnly)+"/"+tag, nil,
		map[string]string{"Accept": "application/json"})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("efgs: audit of %s: %d %s", tag, status, message(body))
	}
	var audit []AuditEntry
	if err := json.Unmarshal(body, &audit); err != nil {
		return nil, fmt.Errorf("efgs: audit of %s: %w", tag, err)
	}
	return audit, nil
}

// PutCallback registers (or replaces) the country's callback id: the
// gateway calls url with ?batchTag=…&date=… when a download batch is new.
func (c *Client) PutCallback(ctx context.Context, id, callbackURL string) error {
	status, body, err := c.do(ctx, http.MethodPut, "/diagnosiskeys/callback/"+url.PathEscape(id)+"?url="+url.QueryEscape(callbackURL), nil, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("efgs: callback %s: %d %s", id, status, message(body))
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, headers map[string]string) (int, []byte, error) {
	status, answer, _, err := c.doHeaders(ctx, method, path, body, headers)
	return status, answer, err
}

func (c *Client) doHeaders(ctx context.Context, method, path string, body []byte, headers map[string]string) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("efgs: %w", err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("efgs: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("efgs: %s %s: %w", method, path, err)
	}
	return resp.StatusCode, answer, resp.Header, nil
}

// message is the text of a gateway's {"message": …} error body, or the
// body as it is.
func message(body []byte) string {
	var m struct{ Message string }
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return m.Message
	}
	return strings.TrimSpace(string(body))
}
