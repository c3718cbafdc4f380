package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Authorities reads the replicated health authorities (*fsm.FSM).
type Authorities interface {
	Authority(issuer string) (*fsmpb.Authority, bool)
}

// EnsureAuthority makes the region's own certificate keys a health
// authority of its /v1/publish, as any other verification server's are,
// so that certificates from /api/certificate are accepted with no manual
// registration. It proposes nothing when the authority is already so; the
// leader runs it whenever it takes office.
func EnsureAuthority(ctx context.Context, a command.Applier, have Authorities, issuer, audience string, appIDs []string, keys []SigningKey) error {
	want := &fsmpb.Authority{Issuer: issuer, Audience: audience, AppIds: appIDs}
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			return fmt.Errorf("certificate key %s: %w", k.Kid, err)
		}
		want.Keys = append(want.Keys, &fsmpb.AuthorityKey{Kid: k.Kid, PublicKeyDer: der})
	}
	if cur, ok := have.Authority(issuer); ok && covers(cur, want) {
		return nil
	}
	if err := command.PutAuthority(ctx, a, want); err != nil {
		return fmt.Errorf("register the verification service as health authority %q: %w", issuer, err)
	}
	return nil
}

// covers tells whether the authority in force already says what want says.
func covers(cur, want *fsmpb.Authority) bool {
	if cur.GetAudience() != want.GetAudience() || !slices.Equal(cur.GetAppIds(), want.GetAppIds()) {
		return false
	}
	for _, w := range want.GetKeys() {
		if !slices.ContainsFunc(cur.GetKeys(), func(k *fsmpb.AuthorityKey) bool {
			return k.GetKid() == w.GetKid() && bytes.Equal(k.GetPublicKeyDer(), w.GetPublicKeyDer()) && k.GetValidThroughUnix() == 0
		}) {
			return false
		}
	}
	return true
}
