package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestApplyRejoin(t *testing.T) {
	members := []Member{{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080"}}
	cases := []struct {
		name              string
		identity, state   bool
		reseed            bool
		bootstrap         bool
		wantJoin, wantErr string
		rejoinLeft        bool
	}{
		{name: "fresh dir bootstraps", bootstrap: true},
		{name: "re-seeded dir joins, not bootstraps", identity: true, reseed: true, bootstrap: true, wantJoin: "http://10.0.0.1:8080", rejoinLeft: true},
		{name: "identity without state never bootstraps", identity: true, bootstrap: true, wantErr: "second region"},
		{name: "identity without state may join", identity: true},
		{name: "state again: the rejoin file goes", identity: true, state: true, reseed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Bootstrap = tc.bootstrap
			if tc.identity {
				writeIdentity(cfg)
			}
			if tc.reseed {
				if _, err := Reseed(cfg.DataDir, members, time.Unix(0, 0)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.state {
				os.WriteFile(filepath.Join(cfg.DataDir, "raft.db"), nil, 0o600)
			}
			err := applyRejoin(&cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cfg.Join, ","); got != tc.wantJoin || (tc.wantJoin != "" && cfg.Bootstrap) {
				t.Fatalf("join %q bootstrap %v, want join %q", got, cfg.Bootstrap, tc.wantJoin)
			}
			if _, err := os.Stat(filepath.Join(cfg.DataDir, rejoinFile)); (err == nil) != tc.rejoinLeft {
				t.Fatalf("rejoin file left: %v, want %v", err == nil, tc.rejoinLeft)
			}
		})
	}
}
