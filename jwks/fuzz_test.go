package jwks_test

import (
	"testing"

	"github.com/covid-backend/covid-backend/jwks"
)

// FuzzParse: a key set is whatever the URL serves (at most MaxSize bytes);
// it reads as keys with distinct, present kids and DER, or is refused, and
// never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"v1","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := jwks.Parse(doc)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if k.Kid == "" || seen[k.Kid] || len(k.DER) == 0 {
				t.Fatalf("a key set read with kid %q (seen %v) and %d bytes of key", k.Kid, seen[k.Kid], len(k.DER))
			}
			seen[k.Kid] = true
		}
	})
}
