// Package sms sends text messages through the operator's SMS gateway: a
// webhook that takes {"to", "message"} as JSON, as most gateways (or a
// small adapter in front of one) do. The verification service sends long
// codes with it; phone numbers pass through and are never stored.
package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Sender sends one message; the verification service needs nothing more.
type Sender interface {
	Send(ctx context.Context, to, message string) error
}

// Webhook is a Sender that posts to the gateway's URL, with a bearer token
// when one is set.
type Webhook struct {
	URL, Token string
	Client     *http.Client
}

// NewWebhook makes a webhook sender with a 10-second timeout.
func NewWebhook(url, token string) *Webhook {
	return &Webhook{URL: url, Token: token, Client: &http.Client{Timeout: 10 * time.Second}}
}

// Send posts the message; any answer but 2xx is an error.
func (w *Webhook) Send(ctx context.Context, to, message string) error {
	body, err := json.Marshal(struct {
		To      string `json:"to"`
		Message string `json:"message"`
	}{to, message})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms gateway: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if w.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.Token)
	}
	resp, err := w.Client.Do(req)
	if err != nil {
		return fmt.Errorf("sms gateway: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sms gateway answered %d", resp.StatusCode)
	}
	return nil
}
