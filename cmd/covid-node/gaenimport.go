package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/gaenimport"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/outbound"
)

// gaenImportTick is how often the leader looks for a GAEN source due for
// a poll (each source sets its own interval, at least 10 seconds).
const gaenImportTick = 5 * time.Second

// gaenImportJob is a leader job that polls the region's GAEN sources and
// imports their new export files (package gaenimport), counting every
// file by outcome in files. A new leader starts with what the state
// holds: files imported are never fetched again; those the previous
// leader refused are fetched once more and refused again.
func gaenImportJob(client *http.Client, allowHTTP bool, files *prometheus.CounterVec, logger *slog.Logger) node.LeaderJob {
	return func(ctx context.Context, n *node.Node) error {
		im := gaenimport.New(client, allowHTTP, logger, func(origin, outcome string) {
			files.WithLabelValues(origin, outcome).Inc()
		})
		for {
			if n.RegionVersion() >= command.GAENImport && !n.FSM().WindingDown(n.Config().Now().Unix()) {
				im.Poll(ctx, n.FSM(), n, n.Config().Now())
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(gaenImportTick):
			}
		}
	}
}

// gaenClient fetches from GAEN sources: HTTPS (plain HTTP too with
// --insecure-dev), trusting the system's CAs and --gaen-ca-file's.
func gaenClient(c *serveConfig) (*http.Client, error) {
	var ca []byte
	if c.GAENCAFile != "" {
		var err error
		if ca, err = os.ReadFile(c.GAENCAFile); err != nil {
			return nil, fmt.Errorf("--gaen-ca-file: %w", err)
		}
	}
	client, err := outbound.NewClient(ca, 0) // each request has its own deadline
	if err != nil {
		return nil, fmt.Errorf("--gaen-ca-file: %w", err)
	}
	return client, nil
}

// gaenImportFiles counts the export files of GAEN sources by origin and
// outcome: "imported", or why a file was refused ("bad_signature",
// "malformed", "file_too_old", ...).
func gaenImportFiles() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "covid_gaen_import_files_total",
		Help: "Export files of GAEN sources this node imported as leader, or refused, by origin and outcome."}, []string{"origin", "outcome"})
}
