package jwks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// DefaultGrace is how long a key gone from its set still verifies, unless
// the authority says otherwise: certificates live minutes, but an app may
// retry an upload for a while.
const DefaultGrace = 24 * time.Hour

// Next is an authority's keys after a fetch, by kid: every fetched key,
// valid from when it was first seen (kept from before) with no end, and
// every key it had that the set no longer holds, ending grace after now
// (or when it ended already, if sooner); and whether anything changed.
func Next(current []*fsmpb.AuthorityKey, fetched []Key, now time.Time, grace time.Duration) ([]*fsmpb.AuthorityKey, bool) {
	var out []*fsmpb.AuthorityKey
	changed := false
	for _, f := range fetched {
		i := slices.IndexFunc(current, func(k *fsmpb.AuthorityKey) bool { return k.GetKid() == f.Kid })
		k := &fsmpb.AuthorityKey{Kid: f.Kid, PublicKeyDer: f.DER}
		if i < 0 {
			changed = true
		} else {
			k.ValidFromUnix = current[i].GetValidFromUnix()
			changed = changed || !bytes.Equal(current[i].GetPublicKeyDer(), f.DER) || current[i].GetValidThroughUnix() != 0
		}
		out = append(out, k)
	}
	end := now.Add(grace).Unix()
	for _, k := range current {
		if slices.ContainsFunc(fetched, func(f Key) bool { return f.Kid == k.GetKid() }) {
			continue
		}
		k = proto.CloneOf(k)
		if k.GetValidThroughUnix() == 0 || k.GetValidThroughUnix() > end {
			k.ValidThroughUnix, changed = end, true
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *fsmpb.AuthorityKey) int { return strings.Compare(a.GetKid(), b.GetKid()) })
	return out, changed
}

// FetchFunc fetches a key set (Fetcher.Fetch).
type FetchFunc func(ctx context.Context, url string) ([]Key, error)

// LookupFunc reads an authority as the state holds it now (fsm.FSM's
// Authority).
type LookupFunc func(issuer string) (*fsmpb.Authority, bool)

// Refresh fetches the set of every authority that names one and commits
// each change as one PUT_AUTHORITY, so that every node verifies with the
// same keys from the same log entry. A set that cannot be fetched changes
// nothing (the authority keeps its keys); its error is returned with the
// others. An authority that changed while its set was fetched (an
// operator removed it, or changed its audience, apps or keys) is left as
// the operator left it, until the next refresh.
func Refresh(ctx context.Context, region command.Applier, authorities []*fsmpb.Authority, lookup LookupFunc, fetch FetchFunc, now time.Time) error {
	var errs []error
	for _, a := range authorities {
		if a.GetJwksUrl() == "" {
			continue
		}
		fetched, err := fetch(ctx, a.GetJwksUrl())
		if err != nil {
			errs = append(errs, fmt.Errorf("authority %q: %w", a.GetIssuer(), err))
			continue
		}
		keys, changed := Next(a.GetKeys(), fetched, now, Grace(a))
		if !changed {
			continue
		}
		if still, ok := lookup(a.GetIssuer()); !ok || !proto.Equal(still, a) {
			continue
		}
		next := proto.CloneOf(a)
		next.Keys = keys
		if err := command.PutAuthority(ctx, region, next); err != nil {
			errs = append(errs, fmt.Errorf("authority %q: %w", a.GetIssuer(), err))
		}
	}
	return errors.Join(errs...)
}

// Grace is how long an authority's keys gone from its set still verify.
func Grace(a *fsmpb.Authority) time.Duration {
	if s := a.GetJwksGraceSeconds(); s > 0 {
		return time.Duration(s) * time.Second
	}
	return DefaultGrace
}
