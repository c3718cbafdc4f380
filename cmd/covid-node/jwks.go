package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/jwks"
	"github.com/covid-backend/covid-backend/node"
)

// jwksFetcher fetches the health authorities' key sets: HTTPS (plain HTTP
// too with --insecure-dev), trusting the system's CAs and --jwks-ca-file's.
func jwksFetcher(c *serveConfig) (jwks.Fetcher, error) {
	var ca []byte
	if c.JWKSCAFile != "" {
		var err error
		if ca, err = os.ReadFile(c.JWKSCAFile); err != nil {
			return jwks.Fetcher{}, fmt.Errorf("--jwks-ca-file: %w", err)
		}
	}
	return jwks.NewFetcher(c.InsecureDev, ca)
}

// jwksJob is a leader job that fetches the key set of every health
// authority that names one, every interval while it leads, and commits a
// change (jwks.Refresh); a set that cannot be fetched is logged and its
// authority keeps its keys.
func jwksJob(fetcher jwks.Fetcher, interval time.Duration, logger *slog.Logger) node.LeaderJob {
	return func(ctx context.Context, n *node.Node) error {
		for {
			if n.RegionVersion() >= command.JWKSAuthorities {
				if err := jwks.Refresh(ctx, n, n.FSM().Authorities(), n.FSM().Authority, fetcher.Fetch, n.Config().Now()); err != nil {
					logger.Warn("health authority keys: a JWKS was not taken", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
		}
	}
}
