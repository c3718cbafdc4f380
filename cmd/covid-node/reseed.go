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
	"path/filepath"
	"time"

	"github.com/covid-backend/covid-backend/node"
)

// reseed makes a stopped node whose raft state is damaged (a truncated
// log, a corrupted snapshot) join its region again from scratch: the
// region removes it from its membership (so the node never votes as the
// member it was), its raft files are moved aside, and its next start joins
// through the remaining members and takes the leader's snapshot.
func reseed(ctx context.Context, args []string, stdout io.Writer) error {
	var dataDir string
	c, err := subcommand("reseed", args, func(fs *flag.FlagSet) {
		fs.StringVar(&dataDir, "data-dir", "", "the stopped node's data dir")
	})
	if err != nil {
		return err
	}
	if dataDir == "" {
		return errors.New("reseed: --data-dir is required")
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "node.json"))
	if err != nil {
		return fmt.Errorf("reseed: %s is not a node's data dir: %w", dataDir, err)
	}
	var id struct{ ID, Region string }
	if err := json.Unmarshal(b, &id); err != nil || id.ID == "" {
		return fmt.Errorf("reseed: node identity in %s: %v", dataDir, err)
	}
	if err := node.CheckStopped(dataDir); err != nil {
		return fmt.Errorf("reseed: %w", err)
	}
	var list struct{ Members []node.Member }
	if err := c.do(ctx, http.MethodGet, node.PathMembers, nil, &list); err != nil {
		return fmt.Errorf("reseed: list the region's members: %w", err)
	}
	var others []node.Member
	member := false
	for _, m := range list.Members {
		if m.ID == id.ID {
			member = true
		} else {
			others = append(others, m)
		}
	}
	if member {
		if err := c.do(ctx, http.MethodDelete, node.PathMembers+"/"+url.PathEscape(id.ID), nil, nil); err != nil {
			return fmt.Errorf("reseed: remove %s from the region: %w", id.ID, err)
		}
	}
	aside, err := node.Reseed(dataDir, others, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-seeded %s of region %s: its old raft files are in %s; start it again and it joins through %d members\n",
		id.ID, id.Region, aside, len(others))
	return nil
}
