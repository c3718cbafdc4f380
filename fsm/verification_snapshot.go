package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// verificationRecords are the verification service's records in snapshot
// order. Records are replaced on change, never changed, so they are shared.
type verificationRecords struct {
	apiKeys []*fsmpb.ApiKey
	codes   []*fsmpb.VerificationCode
	tokens  []*fsmpb.VerificationToken
	users   []*fsmpb.User
	audit   []*fsmpb.AuditEvent
}

func (s *state) verificationRecords() verificationRecords {
	var r verificationRecords
	for _, k := range s.apiKeys {
		r.apiKeys = append(r.apiKeys, k)
	}
	for _, c := range s.vcodes {
		r.codes = append(r.codes, c)
	}
	for _, t := range s.tokens {
		r.tokens = append(r.tokens, t)
	}
	for _, u := range s.users {
		r.users = append(r.users, u)
	}
	r.audit = slices.Clone(s.audit)
	return r
}

// write sorts (outside the state lock) and writes the records.
func (r verificationRecords) write(put func(proto.Message) error) error {
	slices.SortFunc(r.apiKeys, func(a, b *fsmpb.ApiKey) int { return slices.Compare(a.GetHash(), b.GetHash()) })
	slices.SortFunc(r.codes, func(a, b *fsmpb.VerificationCode) int { return strings.Compare(a.GetUuid(), b.GetUuid()) })
	slices.SortFunc(r.tokens, func(a, b *fsmpb.VerificationToken) int { return cmp.Compare(a.GetId(), b.GetId()) })
	for _, k := range r.apiKeys {
		if err := put(k); err != nil {
			return err
		}
	}
	for _, c := range r.codes {
		if err := put(c); err != nil {
			return err
		}
	}
	for _, t := range r.tokens {
		if err := put(t); err != nil {
			return err
		}
	}
	slices.SortFunc(r.users, func(a, b *fsmpb.User) int { return strings.Compare(a.GetEmail(), b.GetEmail()) })
	for _, u := range r.users {
		if err := put(u); err != nil {
			return err
		}
	}
	for _, e := range r.audit {
		if err := put(e); err != nil {
			return err
		}
	}
	return nil
}

// readVerification reads the API keys, codes and tokens, and rebuilds the
// index from code hashes to codes.
func readVerification(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	get := r.get
	for range hdr.GetApiKeys() {
		k := &fsmpb.ApiKey{}
		if err := get(k); err != nil {
			return fmt.Errorf("read API key: %w", err)
		}
		if len(k.GetHash()) != 32 || s.apiKeys[[32]byte(k.GetHash())] != nil {
			return fmt.Errorf("API key %q: bad or repeated hash", k.GetName())
		}
		s.apiKeys[[32]byte(k.GetHash())] = k
	}
	for range hdr.GetVerificationCodes() {
		c := &fsmpb.VerificationCode{}
		if err := get(c); err != nil {
			return fmt.Errorf("read verification code: %w", err)
		}
		if len(c.GetShortHash()) != 32 || len(c.GetLongHash()) != 32 || s.vcodes[c.GetUuid()] != nil {
			return fmt.Errorf("verification code %q: bad hashes or repeated uuid", c.GetUuid())
		}
		s.vcodes[c.GetUuid()] = c
	}
	// A hash points at the newest code that holds it (an older holder has
	// expired: a live hash is never issued twice).
	for _, c := range sortedVCodes(s.vcodes) {
		s.vcodeHash[[32]byte(c.GetShortHash())] = c.GetUuid()
		s.vcodeHash[[32]byte(c.GetLongHash())] = c.GetUuid()
	}
	for range hdr.GetVerificationTokens() {
		t := &fsmpb.VerificationToken{}
		if err := get(t); err != nil {
			return fmt.Errorf("read verification token: %w", err)
		}
		if t.GetId() == "" || s.tokens[t.GetId()] != nil {
			return fmt.Errorf("verification token %q: empty or repeated id", t.GetId())
		}
		s.tokens[t.GetId()] = t
	}
	for range hdr.GetUsers() {
		u := &fsmpb.User{}
		if err := get(u); err != nil {
			return fmt.Errorf("read portal account: %w", err)
		}
		if u.GetEmail() == "" || s.users[u.GetEmail()] != nil {
			return fmt.Errorf("portal account %q: empty or repeated", u.GetEmail())
		}
		s.users[u.GetEmail()] = u
	}
	for range hdr.GetAuditEvents() {
		e := &fsmpb.AuditEvent{}
		if err := get(e); err != nil {
			return fmt.Errorf("read audit event: %w", err)
		}
		s.audit = append(s.audit, e)
	}
	return nil
}

// sortedVCodes lists codes oldest issued first (then by uuid).
func sortedVCodes(m map[string]*fsmpb.VerificationCode) []*fsmpb.VerificationCode {
	out := make([]*fsmpb.VerificationCode, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *fsmpb.VerificationCode) int {
		return cmp.Or(cmp.Compare(a.GetIssuedUnix(), b.GetIssuedUnix()), strings.Compare(a.GetUuid(), b.GetUuid()))
	})
	return out
}
