package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/command"
)

// preflightJoin asks the region, before anything is written to the data
// dir, whether it would admit this node: a wrong region, a taken id or a bad
// token ends the start with a clear error instead of a half-made data dir.
// It retries while no member answers.
func preflightJoin(ctx context.Context, cfg Config, client *http.Client) error {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft.db")); err == nil {
		return nil
	}
	req := joinRequest(cfg)
	req.DryRun = true
	return tryJoin(ctx, cfg, client, req)
}

// joinLoop asks the members listed in --join to admit this node, until one
// of them does or the node stops.
func (n *Node) joinLoop(ctx context.Context) {
	if err := tryJoin(ctx, n.cfg, n.client, joinRequest(n.cfg)); err != nil {
		n.cfg.Logger.Error("join failed", "err", err)
		return
	}
	n.cfg.Logger.Info("joined region", "region", n.cfg.Region)
}

// joinRequest is what this node asks its region: its addresses, build and
// member certificate.
func joinRequest(cfg Config) JoinRequest {
	req := JoinRequest{ID: cfg.ID, RaftAddr: cfg.RaftAdvertise, HTTPAddr: cfg.HTTPAddr, Region: cfg.Region,
		CommandVersion: command.Version, TLS: speaksTLS(cfg), Edge: cfg.Edge}
	if cfg.MemberTLS != nil {
		req.CertSHA256, req.CertNotBefore = certRecord(cfg.MemberTLS)
	}
	return req
}

func tryJoin(ctx context.Context, cfg Config, client *http.Client, req JoinRequest) error {
	body, _ := json.Marshal(req)
	for attempt := 0; ; attempt++ {
		for _, base := range cfg.Join {
			status, msg, err := postJoin(ctx, client, cfg, joinURL(cfg, base)+PathMembers, body)
			switch {
			case err != nil:
				cfg.Logger.Info("join: member not reachable yet", "url", base, "err", err)
			case status < 300:
				return nil
			case status == http.StatusServiceUnavailable || status >= 500:
				cfg.Logger.Info("join: region not ready", "url", base, "status", status, "error", msg)
			default:
				return fmt.Errorf("join %s refused (%d): %s", base, status, msg)
			}
		}
		if err := sleepCtx(ctx, min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second)); err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
}

// joinURL is the base URL a --join entry names: with a member credential
// a member's port (host:port, its raft address), else its API URL.
func joinURL(cfg Config, entry string) string {
	entry = strings.TrimRight(entry, "/")
	if cfg.MemberTLS != nil {
		return "https://" + strings.TrimPrefix(entry, "https://")
	}
	return entry
}

func postJoin(ctx context.Context, client *http.Client, cfg Config, url string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.AdminToken) // an operator's node: see send
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var reply struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reply)
	return resp.StatusCode, reply.Error, nil
}

func speaksTLS(cfg Config) *bool {
	tls := cfg.MemberTLS != nil
	return &tls
}
