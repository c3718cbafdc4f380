package publish

import (
	"strings"
	"testing"
)

func TestRevisionTokenRoundTrip(t *testing.T) {
	key := RevisionTokenKey("region secret")
	keys := []RevisableKey{{Key: [16]byte{1}, Start: 2_990_000, Period: 144}, {Key: [16]byte{2}, Start: 2_990_144, Period: 1}}
	tok, err := SealRevisionToken(key, keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenRevisionToken(key, tok)
	if err != nil || len(got) != 2 || got[0] != keys[0] || got[1] != keys[1] {
		t.Fatalf("open: %+v %v", got, err)
	}
	one, _ := SealRevisionToken(key, keys[:1])
	if len(one) != len(tok) {
		t.Fatal("token length tells how many keys it covers")
	}
	tampered := []byte(tok)
	tampered[10] = map[bool]byte{true: 'B', false: 'A'}[tampered[10] == 'A']
	for name, bad := range map[string]string{
		"other key":  mustSeal(t, RevisionTokenKey("other"), keys),
		"tampered":   string(tampered),
		"not base64": "%%%",
		"too short":  "AQID",
		"empty":      "",
		"huge":       strings.Repeat("A", 8000),
	} {
		if _, err := OpenRevisionToken(key, bad); err == nil {
			t.Errorf("%s token opened", name)
		}
	}
}

func mustSeal(t *testing.T, key []byte, keys []RevisableKey) string {
	t.Helper()
	tok, err := SealRevisionToken(key, keys)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
