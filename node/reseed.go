package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// rejoinFile, written by Reseed into a data dir whose raft state it moved
// aside, names the members to join: the next start joins through them,
// whatever --bootstrap or --join say, and the file goes once the node has
// raft state again.
const rejoinFile = "rejoin.json"

// Rejoin is the content of rejoinFile.
type Rejoin struct {
	Members []Member `json:"members"`
}

// reseedHint is what an operator runs when a node's raft state is damaged.
const reseedHint = "covid-node reseed --data-dir <dir> --addr <a member's URL> --token-file <admin token>, then start it again"

// ErrNodeRunning means a node process holds the data dir.
var ErrNodeRunning = errors.New("a node is running on this data dir: stop it first")

// Reseed prepares a data dir whose raft state is damaged to be filled
// again from the region: it moves the raft store and the snapshots into a
// folder damaged-<time> beside them (nothing is deleted) and writes the
// rejoin file naming members, so that the next start joins the region as
// a new member and takes the leader's snapshot. The caller must first
// remove the node from the region's membership: a node that lost its raft
// state must not vote as the member it was (it may have voted already in
// the current term). It returns the folder the old files went to.
func Reseed(dataDir string, members []Member, now time.Time) (string, error) {
	if len(members) == 0 {
		return "", errors.New("reseed: no member to join")
	}
	if err := CheckStopped(dataDir); err != nil {
		return "", err
	}
	aside := filepath.Join(dataDir, "damaged-"+now.UTC().Format("20060102T150405Z"))
	if err := os.Mkdir(aside, 0o700); err != nil {
		return "", fmt.Errorf("reseed: %w", err)
	}
	for _, name := range []string{"raft.db", "snapshots"} {
		err := os.Rename(filepath.Join(dataDir, name), filepath.Join(aside, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("reseed: move %s aside: %w", name, err)
		}
	}
	b, _ := json.Marshal(Rejoin{Members: members})
	if err := os.WriteFile(filepath.Join(dataDir, rejoinFile), b, 0o600); err != nil {
		return "", fmt.Errorf("reseed: %w", err)
	}
	return aside, nil
}

// CheckStopped returns ErrNodeRunning while a node process holds the data
// dir's raft store (a damaged store that does not open counts as stopped).
func CheckStopped(dataDir string) error {
	db, err := bbolt.Open(filepath.Join(dataDir, "raft.db"), 0o600, &bbolt.Options{Timeout: 200 * time.Millisecond, ReadOnly: true})
	switch {
	case errors.Is(err, bbolt.ErrTimeout):
		return ErrNodeRunning
	case err == nil:
		db.Close()
	}
	return nil
}

// applyRejoin, at start, makes a node whose data dir holds no raft state
// but a rejoin file join through the members it names; with raft state
// the file has done its work and goes. A data dir that belonged to a
// region (its identity file) but lost its raft state is never
// bootstrapped: that would start a second region of the same name.
func applyRejoin(cfg *Config) error {
	hasState := fileExists(filepath.Join(cfg.DataDir, "raft.db"))
	path := filepath.Join(cfg.DataDir, rejoinFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && hasState:
		return os.Remove(path)
	case err == nil:
		var rj Rejoin
		if err := json.Unmarshal(b, &rj); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		cfg.Bootstrap, cfg.Join = false, nil
		for _, m := range rj.Members {
			if cfg.MemberTLS != nil {
				cfg.Join = append(cfg.Join, m.RaftAddr)
			} else if m.HTTPAddr != "" {
				cfg.Join = append(cfg.Join, "http://"+m.HTTPAddr)
			}
		}
		cfg.Logger.Info("re-seeded data dir: joining the region again", "through", cfg.Join)
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	if cfg.Bootstrap && !hasState && fileExists(filepath.Join(cfg.DataDir, "node.json")) {
		return fmt.Errorf("data dir %s belonged to a region but holds no raft state: bootstrapping would start a second region %q; "+
			"re-seed it (covid-node reseed) to join the region, or remove node.json to start a new one", cfg.DataDir, cfg.Region)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
