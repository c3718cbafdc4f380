// Package jwks takes a health authority's keys from a JWKS URL, as the
// GAEN reference key server does since v0.24: an authority publishes its
// ES256 keys there and rotates them without an operator pasting keys into
// every region. The leader fetches the set on a schedule (Refresh); a
// change is one replicated PUT_AUTHORITY, so that every node decides
// uploads on the same keys; a key gone from the set stops verifying a
// grace period after it was first missed.
package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/outbound"
)

// MaxSize is the largest JWKS a node reads: a set of a few dozen keys is
// a few KB; anything larger is refused, never read whole.
const MaxSize = 64 << 10

// Key is one ES256 key of a set: its key id and its public key (PKIX DER).
type Key struct {
	Kid string
	DER []byte
}

// Fetcher fetches key sets: HTTPS only unless AllowHTTP (development on
// loopback), at most MaxSize bytes, no redirect to another host, within
// the client's timeout.
type Fetcher struct {
	Client    *http.Client
	AllowHTTP bool
}

// Fetch reads the key set at rawURL and returns its ES256 keys (P-256,
// by kid; keys of other types are left out, as certificates are ES256).
func (f Fetcher) Fetch(ctx context.Context, rawURL string) ([]Key, error) {
	body, err := outbound.Get(ctx, f.Client, rawURL, f.AllowHTTP, MaxSize, "application/json")
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return Parse(body)
}

// jwk is one key of a set as JSON Web Key (RFC 7517, 7518).
type jwk struct {
	Kty, Crv, Kid, Alg, Use string
	X, Y                    string
}

// Parse reads a JWKS document: its P-256 keys for signing, each with a
// kid and a point on the curve; a set without one is an error.
func Parse(doc []byte) ([]Key, error) {
	var set struct{ Keys []jwk }
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("jwks: not a key set: %w", err)
	}
	var out []Key
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "ES256") {
			continue
		}
		der, err := ecDER(k)
		if err != nil {
			return nil, fmt.Errorf("jwks: key %q: %w", k.Kid, err)
		}
		if k.Kid == "" || slices.ContainsFunc(out, func(o Key) bool { return o.Kid == k.Kid }) {
			return nil, fmt.Errorf("jwks: key ids must be present and distinct (%q)", k.Kid)
		}
		out = append(out, Key{Kid: k.Kid, DER: der})
	}
	if len(out) == 0 {
		return nil, errors.New("jwks: the set has no ES256 (EC P-256) key")
	}
	return out, nil
}

// ecDER is a P-256 JWK's public key as PKIX DER, once its point is known
// to be on the curve.
func ecDER(k jwk) ([]byte, error) {
	x, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.X, "="))
	if err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	y, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.Y, "="))
	if err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("x and y must be 32 bytes")
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	if _, err := pub.ECDH(); err != nil {
		return nil, fmt.Errorf("not a point of P-256: %w", err)
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// the default client of NewFetcher.
const fetchTimeout = 10 * time.Second

// NewFetcher is a Fetcher with its own client and a 10-second timeout,
// trusting the system's CAs and, if given, those of caPEM (an authority
// that serves its set under a private CA).
func NewFetcher(allowHTTP bool, caPEM []byte) (Fetcher, error) {
	client, err := outbound.NewClient(caPEM, fetchTimeout)
	if err != nil {
		return Fetcher{}, fmt.Errorf("jwks: %w", err)
	}
	return Fetcher{Client: client, AllowHTTP: allowHTTP}, nil
}
