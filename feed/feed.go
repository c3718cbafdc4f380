// Package feed builds what apps download from a region's sealed batches:
// the GAEN export catalog (index.txt, one file per batch, daily roll-ups)
// and the delta feed that also carries removals. Everything is computed
// from replicated state with deterministic encoding and signatures, so
// every node serves byte-identical files under the same name; results are
// cached in memory and never touch raft.
package feed

import (
	"errors"
	"time"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
)

// Source is the read side of the replicated state that the feed needs;
// *fsm.FSM implements it.
type Source interface {
	Batches() []fsm.BatchInfo
	BatchKeys(seq uint32) (keys, revised []fsm.Key, ok bool)
	LastBatch() uint32
	// FileSignature is the replicated signature of a file's export.bin
	// digest by a key, kept with batch seq (or app configuration version
	// appConfig when seq is 0); nil while there is none.
	FileSignature(seq, appConfig uint32, digest []byte, keyID, keyVersion string) []byte
}

// Config configures a feed.
type Config struct {
	// Region is written into every export file.
	Region string
	// SigningKeys sign every export file (several during a key rotation).
	SigningKeys []export.SigningKey
	// Root prefixes the paths that index.txt lists, relative to the
	// server's base URL, e.g. "v1/exports".
	Root string
	// Retention is how far back index.txt reaches (GAEN: 14 days).
	Retention time.Duration
	// MaxKeysPerFile splits larger files (GAEN reference: 500,000).
	MaxKeysPerFile int
	// CacheEntries and CacheBytes bound how many built files, and how many
	// bytes of them, are kept in memory (each for export files and for the
	// delta feed).
	CacheEntries int
	CacheBytes   int
	// DeltaBuilds bounds the deltas a node builds at once (default 2), and
	// DeltaWait how long a request waits for a build slot (default 1 s)
	// before ErrBusy: every (since, until) pair is a build of its own, so
	// that strangers asking for many pairs hold at most this much CPU and
	// memory.
	DeltaBuilds int
	DeltaWait   time.Duration
}

// ErrNotFound means the name matches no file this node can build: unknown,
// expired, or from a batch this node has not applied yet.
var ErrNotFound = errors.New("no such export file")

// ErrBusy means every delta build slot stayed taken for DeltaWait: retry.
var ErrBusy = errors.New("delta builds are busy; retry")

// ErrNoSigningKey means the node was started without an export key.
var ErrNoSigningKey = errors.New("no export signing key configured")

func (c *Config) defaults() {
	if c.Retention == 0 {
		c.Retention = 14 * 24 * time.Hour
	}
	if c.MaxKeysPerFile == 0 {
		c.MaxKeysPerFile = export.MaxKeysPerFile
	}
	if c.DeltaBuilds == 0 {
		c.DeltaBuilds = 2
	}
	if c.DeltaWait == 0 {
		c.DeltaWait = time.Second
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 256 << 20
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = 256
	}
}

func exportKey(k fsm.Key) export.Key {
	return export.Key{
		Data: k.Data, RollingStart: k.RollingStart, RollingPeriod: k.RollingPeriod,
		TransmissionRisk: k.TransmissionRisk, ReportType: k.ReportType,
		DaysSinceOnset: k.DaysSinceOnset, HasDaysSinceOnset: k.HasDaysSinceOnset,
	}
}
