package node

import (
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger routes raft's hclog output into the node's slog handler.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.FromStandardLogger(slog.NewLogLogger(l.Handler(), slog.LevelInfo), &hclog.LoggerOptions{
		Name: "raft", Level: hclog.Info,
	})
}
