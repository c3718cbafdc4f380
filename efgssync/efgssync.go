// Package efgssync is a region's exchange with the EU gateway (EFGS), run
// by the leader: it uploads the real keys of each own batch, once and in
// order, and imports the gateway's download batches, each checked against
// its audit, following the chain of tags across days. Progress is the
// state machine's (EFGS_UPLOADED, IMPORT_EFGS), so that a new leader
// resumes where the old one stood: an upload sent again has the same tag
// (the digest of its body), which the gateway answers 409.
package efgssync

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// MaxBatchesPerPass bounds the download batches one pass imports; the
// rest wait for the next pass.
const MaxBatchesPerPass = 100

// State is what the exchange reads of the region's state; *fsm.FSM
// implements it.
type State interface {
	EFGSNextUpload() (seq uint32, keys []fsm.Key, ok bool)
	EFGSProgress() *fsmpb.EFGSState
	EFGSImported(tag string) bool
}

// Sync exchanges keys with the gateway for one country.
type Sync struct {
	// Client speaks to the gateway as the country (mutual TLS, signing).
	Client *efgs.Client
	// Anchor is the gateway's trust anchor: it signed every country's
	// signing certificate.
	Anchor *x509.Certificate
	// Visited are the countries the region's keys are sent as visited.
	Visited []string
	// Start is how many days before today the first download begins (at
	// most 13: the gateway keeps 14 days).
	Start int
	// Now is the gateway's rules' clock (nil: time.Now).
	Now func() time.Time
	// CallbackURL, when set, is registered at the gateway (as callback
	// CallbackID), which calls it on each new download batch.
	CallbackURL string
	Logger      *slog.Logger
}

// CallbackID is the id this project registers its callback under.
const CallbackID = "covid-backend"

// Register registers the callback, if one is configured.
func (s *Sync) Register(ctx context.Context) error {
	if s.CallbackURL == "" {
		return nil
	}
	return s.Client.PutCallback(ctx, CallbackID, s.CallbackURL)
}

// Upload uploads every own batch not accounted for yet, oldest first, and
// records each (a batch without own keys is recorded without an upload).
// It returns how many batches it recorded.
func (s *Sync) Upload(ctx context.Context, st State, a command.Applier) (int, error) {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	for n := 0; ; {
		seq, keys, ok := st.EFGSNextUpload()
		if !ok {
			return n, nil
		}
		tags, err := s.uploadKeys(ctx, keys, now())
		if err != nil {
			return n, fmt.Errorf("efgs: upload batch %d: %w", seq, err)
		}
		err = command.EFGSUploaded(ctx, a, seq, tags, len(keys))
		var refused *command.Error
		if errors.As(err, &refused) && refused.Code == command.CodeEFGSOrder {
			continue // another leader recorded it: read the state again
		}
		if err != nil {
			return n, fmt.Errorf("efgs: record batch %d: %w", seq, err)
		}
		n++
		s.Logger.Info("efgs: batch uploaded", "seq", seq, "keys", len(keys), "uploads", len(tags))
	}
}

// uploadKeys sends keys in uploads of at most efgs.MaxUploadKeys, each in
// the order of its canonical bytes, and returns the tags stored. Keys the
// gateway would refuse at now (older than its window: a region that
// uploads its batches late) are left out, so that they do not hold up the
// others.
func (s *Sync) uploadKeys(ctx context.Context, keys []fsm.Key, now time.Time) ([]string, error) {
	out := make([]*efgspb.DiagnosisKey, 0, len(keys))
	for _, k := range keys {
		if dk := efgs.FromGAEN(k.Proto(), s.Client.Country, s.Visited); efgs.Acceptable(dk, now) == nil {
			out = append(out, dk)
		}
	}
	efgs.SortCanonical(out)
	var tags []string
	for chunk := range slices.Chunk(out, efgs.MaxUploadKeys) {
		got, err := s.Client.Upload(ctx, chunk)
		tags = append(tags, got...)
		if err != nil {
			return tags, err
		}
	}
	return tags, nil
}

// gatewayDays is how many days back the gateway keeps batches (EFGS: 14,
// today included); a day before them answers 410.
const gatewayDays = 14

// Download imports the gateway's batches after the cursor and returns how
// many it imported. A pass asks for at most MaxBatchesPerPass batches and
// ends where nothing moves on: the end of the chain, or a batch imported
// before that is not the cursor's.
func (s *Sync) Download(ctx context.Context, st State, a command.Applier, now time.Time) (int, error) {
	n := 0
	for range MaxBatchesPerPass {
		c := st.EFGSProgress().GetCursor()
		batch, day, err := s.next(ctx, c, now)
		if err != nil || batch == nil {
			return n, err
		}
		if st.EFGSImported(batch.Tag) {
			if batch.Tag != c.GetTag() || batch.Next == "" || batch.Next == c.GetNextTag() {
				return n, nil // nothing new
			}
			// The cursor's batch, fetched again, names its next tag now.
			if _, err := command.ImportEFGS(ctx, a, &fsmpb.ImportEFGS{DayUnix: day.Unix(), Tag: batch.Tag, NextTag: batch.Next}); err != nil {
				return n, err
			}
			continue
		}
		if err := s.importBatch(ctx, a, batch, day, now); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// next fetches the batch to look at after the cursor: the tag after it;
// the cursor's own batch again when its chain had ended (to learn whether
// it goes on); else the first batch of a later day up to today, within
// the days the gateway keeps. A batch that is gone (404 or 410 for a tag
// the chain named: aged out at the gateway) is passed over to the next
// day that has one. nil: none.
func (s *Sync) next(ctx context.Context, c *fsmpb.EFGSCursor, now time.Time) (*efgs.Batch, time.Time, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(gatewayDays - 1)) // the oldest day the gateway keeps
	after := func(day time.Time) (*efgs.Batch, time.Time, error) {
		if day.Before(first) {
			day = first.AddDate(0, 0, -1)
		}
		return s.firstAfter(ctx, day, today)
	}
	switch {
	case c.GetNextTag() != "":
		day, ok := efgs.TagDay(c.GetNextTag())
		if !ok {
			day = time.Unix(c.GetDayUnix(), 0).UTC()
		}
		b, err := s.Client.Download(ctx, day, c.GetNextTag())
		if b == nil && (err == nil || errors.Is(err, efgs.ErrGone)) {
			return after(day)
		}
		return b, day, err
	case c.GetTag() != "":
		day := time.Unix(c.GetDayUnix(), 0).UTC()
		b, err := s.Client.Download(ctx, day, c.GetTag())
		if err == nil && b != nil && b.Next != "" {
			return b, day, nil
		}
		if err != nil && !errors.Is(err, efgs.ErrGone) {
			return nil, day, err
		}
		return after(day)
	}
	return after(today.AddDate(0, 0, -min(s.Start, gatewayDays-1)-1))
}

// firstAfter fetches the first batch of the first day after day, up to
// today, that has one (a day the gateway no longer keeps has none).
func (s *Sync) firstAfter(ctx context.Context, day, today time.Time) (*efgs.Batch, time.Time, error) {
	for d := day.AddDate(0, 0, 1); !d.After(today); d = d.AddDate(0, 0, 1) {
		b, err := s.Client.Download(ctx, d, "")
		if errors.Is(err, efgs.ErrGone) {
			continue
		}
		if err != nil || b != nil {
			return b, d, err
		}
	}
	return nil, time.Time{}, nil
}

// importBatch checks a download batch against its audit and imports the
// keys that pass, with their countries.
func (s *Sync) importBatch(ctx context.Context, a command.Applier, b *efgs.Batch, day, now time.Time) error {
	audit, err := s.Client.Audit(ctx, day, b.Tag)
	if err != nil {
		return err
	}
	kept, rejected, err := efgs.VerifyDownload(b.Keys, audit, s.Anchor, s.Client.Country, now)
	if err != nil {
		return fmt.Errorf("efgs: batch %s: %w", b.Tag, err)
	}
	for _, r := range rejected {
		s.Logger.Warn("efgs: keys of a download batch rejected", "tag", b.Tag, "country", r.Country, "keys", r.Keys, "why", r.Reason)
	}
	in := &fsmpb.ImportEFGS{DayUnix: day.Unix(), Tag: b.Tag, NextTag: b.Next}
	for _, k := range kept {
		gk, err := efgs.ToGAEN(k)
		if err != nil {
			s.Logger.Warn("efgs: a key left out", "tag", b.Tag, "country", k.GetOrigin(), "why", err)
			continue
		}
		in.Keys = append(in.Keys, &fsmpb.EFGSKey{Origin: k.GetOrigin(), Key: gk})
	}
	res, err := command.ImportEFGS(ctx, a, in)
	if err != nil {
		return fmt.Errorf("efgs: import batch %s: %w", b.Tag, err)
	}
	s.Logger.Info("efgs: batch imported", "tag", b.Tag, "merged", res.GetMerged(), "skipped", res.GetSkipped(), "rejected", len(rejected))
	return nil
}
