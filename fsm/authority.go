package fsm

import (
	"crypto/x509"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// maxJWKSURL bounds an authority's JWKS URL.
const maxJWKSURL = 2048

// applyPutAuthority adds a health authority or updates it: issuer, audience
// and app ids are replaced, key versions are merged by kid (rotation).
func applyPutAuthority(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	a := proto.CloneOf(cmd.GetPutAuthority())
	if a.GetIssuer() == "" || a.GetAudience() == "" {
		return refuse(command.CodeInvalidCommand, "authority needs an issuer and an audience")
	}
	if len(a.GetAppIds()) == 0 {
		return refuse(command.CodeInvalidCommand, "authority %q needs at least one app id", a.GetIssuer())
	}
	if len(a.GetKeys()) == 0 {
		return refuse(command.CodeInvalidCommand, "authority %q needs at least one key", a.GetIssuer())
	}
	if len(a.GetJwksUrl()) > maxJWKSURL || a.GetJwksGraceSeconds() < 0 {
		return refuse(command.CodeInvalidCommand, "authority %q: a JWKS URL of at most %d bytes and a grace of 0 or more", a.GetIssuer(), maxJWKSURL)
	}
	kids := make(map[string]bool, len(a.GetKeys()))
	for _, k := range a.GetKeys() {
		if k.GetKid() == "" || kids[k.GetKid()] {
			return refuse(command.CodeInvalidCommand, "authority %q: key ids must be present and distinct", a.GetIssuer())
		}
		kids[k.GetKid()] = true
		if _, err := x509.ParsePKIXPublicKey(k.GetPublicKeyDer()); err != nil {
			return refuse(command.CodeInvalidCommand, "authority %q key %q: %v", a.GetIssuer(), k.GetKid(), err)
		}
	}
	a.Keys = mergeByID(a.GetKeys(), s.authorities[a.GetIssuer()].GetKeys(), (*fsmpb.AuthorityKey).GetKid)
	s.authorities[a.GetIssuer()] = a
	return &fsmpb.Result{}
}

// applyRemoveAuthority removes one key version, or the whole authority when
// no kid is given or its last key goes.
func applyRemoveAuthority(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	r := cmd.GetRemoveAuthority()
	a, ok := s.authorities[r.GetIssuer()]
	if !ok {
		return refuse(command.CodeUnknownAuthority, "no health authority with issuer %q", r.GetIssuer())
	}
	if r.GetKid() == "" {
		delete(s.authorities, r.GetIssuer())
		return &fsmpb.Result{}
	}
	i := slices.IndexFunc(a.GetKeys(), func(k *fsmpb.AuthorityKey) bool { return k.GetKid() == r.GetKid() })
	if i < 0 {
		return refuse(command.CodeUnknownAuthority, "health authority %q has no key %q", r.GetIssuer(), r.GetKid())
	}
	if len(a.GetKeys()) == 1 {
		delete(s.authorities, r.GetIssuer())
		return &fsmpb.Result{}
	}
	a.Keys = slices.Delete(slices.Clone(a.Keys), i, i+1)
	return &fsmpb.Result{}
}

// mergeByID adds to fresh the entries of old whose id fresh lacks, sorted
// by id: a new key version joins the others (rotation) instead of
// replacing them.
func mergeByID[T any](fresh, old []T, id func(T) string) []T {
	have := make(map[string]bool, len(fresh))
	for _, e := range fresh {
		have[id(e)] = true
	}
	for _, e := range old {
		if !have[id(e)] {
			fresh = append(fresh, e)
		}
	}
	slices.SortFunc(fresh, func(x, y T) int { return strings.Compare(id(x), id(y)) })
	return fresh
}
