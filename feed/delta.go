package feed

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/feed/feedpb"
	"github.com/covid-backend/covid-backend/fsm"
)

// ErrFutureCursor means a cursor beyond the newest batch this node has.
var ErrFutureCursor = errors.New("cursor is beyond the newest batch")

// Cursor selects a delta: the batches after Since up to Until. HasSince
// false (or a Since older than retention) asks for the full current set;
// Until 0 means the newest batch.
type Cursor struct {
	Since, Until uint32
	HasSince     bool
}

// Delta returns the delta feed for the cursor, encoded as protobuf or as
// JSON, with the cursor it answered (Until filled in). Answers are cached:
// a (since, until) pair never changes.
func (c *Catalog) Delta(cur Cursor, asJSON bool) (*File, Cursor, error) {
	last := c.src.LastBatch()
	if cur.Until == 0 {
		cur.Until = last
	}
	if cur.Until > last || (cur.HasSince && cur.Since > cur.Until) {
		return nil, cur, fmt.Errorf("%w: since %d, until %d, newest batch %d", ErrFutureCursor, cur.Since, cur.Until, last)
	}
	batches := c.src.Batches()
	full := !cur.HasSince || len(batches) == 0 || cur.Since+1 < batches[0].Seq
	if full {
		cur.Since, cur.HasSince = 0, false
	}
	key := fmt.Sprintf("%v/%d/%d/%v", full, cur.Since, cur.Until, asJSON)
	f, err := c.delta.get(key, func() (*File, error) {
		if !c.deltaSlot() {
			return nil, ErrBusy
		}
		defer func() { <-c.deltaBuilds }()
		return c.buildDelta(batches, cur, full, asJSON)
	})
	return f, cur, err
}

// deltaSlot takes a build slot, waiting up to DeltaWait.
func (c *Catalog) deltaSlot() bool {
	t := time.NewTimer(c.cfg.DeltaWait)
	defer t.Stop()
	select {
	case c.deltaBuilds <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (c *Catalog) buildDelta(batches []fsm.BatchInfo, cur Cursor, full, asJSON bool) (*File, error) {
	msg := &feedpb.KeyFeed{Region: c.cfg.Region, Since: cur.Since, Until: cur.Until, Full: full}
	size := 0
	for _, b := range batches {
		if b.Seq <= cur.Until && b.Seq > cur.Since {
			size += b.Keys + b.Padding + b.Revised
		}
	}
	set := newKeySet(size)
	for _, b := range batches {
		if b.Seq > cur.Until || b.Seq <= cur.Since {
			continue
		}
		keys, revised, ok := c.src.BatchKeys(b.Seq)
		if !ok {
			return nil, fmt.Errorf("batch %d vanished while building the delta", b.Seq)
		}
		for _, k := range keys {
			set.put(k)
		}
		for _, k := range revised {
			// A revoked key is a removal; a revised one is published again
			// with its new report type.
			if k.ReportType == fsm.ReportTypeRevoked {
				if !set.drop(k.Data) || !full {
					msg.Removed = append(msg.Removed, feedKey(k))
				}
			} else {
				set.put(k)
			}
		}
	}
	msg.Added = set.list()
	if full {
		msg.Removed = nil // a full answer is the current set: nothing to remove
	}
	var data []byte
	var err error
	if asJSON {
		data, err = protojson.Marshal(msg)
	} else {
		data, err = proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	}
	if err != nil {
		return nil, fmt.Errorf("encode delta: %w", err)
	}
	return newFile(data), nil
}

// keySet keeps keys in the order first seen, the latest version of each.
type keySet struct {
	keys []*feedpb.Key
	pos  map[fsm.TEK]int
}

func newKeySet(size int) *keySet {
	return &keySet{keys: make([]*feedpb.Key, 0, size), pos: make(map[fsm.TEK]int, size)}
}

func (s *keySet) put(k fsm.Key) {
	if i, ok := s.pos[k.Data]; ok && s.keys[i] != nil {
		s.keys[i] = feedKey(k)
		return
	}
	s.pos[k.Data] = len(s.keys)
	s.keys = append(s.keys, feedKey(k))
}

// drop removes a key; it reports whether the key was in the set.
func (s *keySet) drop(data fsm.TEK) bool {
	i, ok := s.pos[data]
	if !ok || s.keys[i] == nil {
		return false
	}
	s.keys[i] = nil
	return true
}

func (s *keySet) list() []*feedpb.Key {
	return slices.DeleteFunc(s.keys, func(k *feedpb.Key) bool { return k == nil })
}

func feedKey(k fsm.Key) *feedpb.Key {
	out := &feedpb.Key{
		KeyData: k.Data[:], RollingStartIntervalNumber: k.RollingStart, RollingPeriod: k.RollingPeriod,
		TransmissionRiskLevel: k.TransmissionRisk, ReportType: k.ReportType,
	}
	if k.HasDaysSinceOnset {
		out.DaysSinceOnsetOfSymptoms = proto.Int32(k.DaysSinceOnset)
	}
	return out
}
