package feed

import (
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/export"
)

const (
	daySeconds = 24 * 60 * 60
	rollupDir  = "day"
)

// fileSpec identifies one export file: the window of one batch, or a daily
// roll-up of the batches of one UTC day that end after start and by end
// (start is one second before the end of the first batch it holds, end
// the end of the last); part numbers files of a window split for size.
// Because a node that has a batch has every batch before it (raft log
// order) and a file is built only when its first and last batch are
// there, the same name always means the same content on every node.
type fileSpec struct {
	rollup     bool
	start, end int64
	part       int
}

// rel is the file's path relative to the catalog root.
func (s fileSpec) rel() string {
	dir := ""
	if s.rollup {
		dir = rollupDir
	}
	return export.FileName(dir, time.Unix(s.start, 0), time.Unix(s.end, 0), s.part)
}

// parseName reads a path relative to the catalog root.
func parseName(rel string) (fileSpec, error) {
	var s fileSpec
	base := rel
	if d, f, ok := strings.Cut(rel, "/"); ok {
		if d != rollupDir {
			return s, ErrNotFound
		}
		s.rollup, base = true, f
	}
	if path.Ext(base) != ".zip" || strings.Contains(base, "/") {
		return s, ErrNotFound
	}
	fields := strings.Split(strings.TrimSuffix(base, ".zip"), "-")
	if len(fields) != 3 {
		return s, ErrNotFound
	}
	var err1, err2, err3 error
	s.start, err1 = strconv.ParseInt(fields[0], 10, 64)
	s.end, err2 = strconv.ParseInt(fields[1], 10, 64)
	s.part, err3 = strconv.Atoi(fields[2])
	if err1 != nil || err2 != nil || err3 != nil || s.part < 1 {
		return s, ErrNotFound
	}
	if s.rel() != rel || s.end < s.start {
		return s, ErrNotFound // not in canonical form
	}
	if s.rollup && (s.start < dayOf(s.end) || s.start >= s.end) {
		return s, ErrNotFound // not within one day
	}
	return s, nil
}

// dayOf is the UTC day a batch belongs to: that of its end, a batch ending
// exactly at midnight belonging to the day before.
func dayOf(endUnix int64) int64 {
	return (endUnix - 1) / daySeconds * daySeconds
}

func parts(keys, perFile int) int {
	return max(1, (keys+perFile-1)/perFile)
}
