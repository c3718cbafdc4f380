package publish

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// TEKMAC returns the GAEN tekmac of the keys: base64 (standard alphabet,
// padded) of HMAC-SHA256 keyed with secret over one "KEY.START.PERIOD.RISK"
// segment per key (KEY is the base64 text as sent), sorted by KEY text and
// joined by ",". Verification servers put it in the certificate; apps and
// tests need it to build uploads. The caller's slice is not reordered.
func TEKMAC(secret []byte, keys []ExposureKey) (string, error) {
	macs, err := allowedTEKMACs(secret, keys)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(macs[0]), nil
}

// allowedTEKMACs returns the MACs a certificate may carry for the keys: the
// four-segment form and, only if every transmission risk is 0, the older
// three-segment form "KEY.START.PERIOD".
func allowedTEKMACs(secret []byte, keys []ExposureKey) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, errors.New("cannot calculate tekmac of zero exposure keys")
	}
	sorted := sortedByKeyText(keys)
	allZero := !slices.ContainsFunc(sorted, func(k ExposureKey) bool { return k.TransmissionRisk != 0 })
	macs := [][]byte{hmacSHA256(secret, tekmacMessage(sorted, true))}
	if allZero {
		macs = append(macs, hmacSHA256(secret, tekmacMessage(sorted, false)))
	}
	return macs, nil
}

// tekmacMessage is what the tekmac signs: the sorted keys as
// "key.interval.count[.risk]", joined by commas.
func tekmacMessage(sorted []ExposureKey, withRisk bool) string {
	b := make([]byte, 0, len(sorted)*48)
	for i, k := range sorted {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k.Key...)
		b = strconv.AppendInt(append(b, '.'), int64(k.IntervalNumber), 10)
		b = strconv.AppendInt(append(b, '.'), int64(k.IntervalCount), 10)
		if withRisk {
			b = strconv.AppendInt(append(b, '.'), int64(k.TransmissionRisk), 10)
		}
	}
	return string(b)
}

// sortedByKeyText returns a copy of keys sorted by their base64 text. The
// reference sorts the request's keys in place this way while computing the
// tekmac, so the key indices in its messages refer to this order.
func sortedByKeyText(keys []ExposureKey) []ExposureKey {
	sorted := slices.Clone(keys)
	slices.SortStableFunc(sorted, func(a, b ExposureKey) int { return strings.Compare(a.Key, b.Key) })
	return sorted
}

func hmacSHA256(secret []byte, message string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(message)) // hash.Hash writes never fail
	return mac.Sum(nil)
}

// DecodeBase64 decodes base64 in the standard or URL alphabet, padded or
// not, as the reference's base64util does for keys, hmacKey, tekmac and
// the verification server's ekeyhmac.
func DecodeBase64(s string) ([]byte, error) {
	text := []byte(strings.TrimRight(s, "="))
	for i, c := range text { // the standard alphabet's two letters, as URL's
		switch c {
		case '+':
			text[i] = '-'
		case '/':
			text[i] = '_'
		}
	}
	b := make([]byte, base64.RawURLEncoding.DecodedLen(len(text)))
	n, err := base64.RawURLEncoding.Decode(b, text)
	if err != nil {
		return nil, fmt.Errorf("decoding base64: %w", err)
	}
	return b[:n], nil
}
