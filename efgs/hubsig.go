package efgs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// HubSignatureHeader carries the stand-in hub's signature of a download
// batch, which EFGS never had: a relay between the hub and a country can
// then neither reorder the chain (the next tag is signed), nor serve one
// day's batch for another, nor change its keys.
const HubSignatureHeader = "batchHubSignature"

// hubDomain prefixes what the hub signs, so that its signature is never
// taken for one over anything else.
const hubDomain = "covid-backend hub download batch v1\x00"

// HubMessage is what the hub signs for a download batch served to a
// country: the date and tag asked for ("" for the day's first), the
// country, the batch's tag and next tag as sent ("null" at the end), and
// the SHA-256 of the body; so an answer cannot be replayed to another
// question.
func HubMessage(date, asked, country, tag, next string, body []byte) []byte {
	sum := sha256.Sum256(body)
	msg := []byte(hubDomain)
	for _, f := range []string{date, asked, country, tag, next} {
		msg = append(append(msg, f...), 0)
	}
	return append(msg, sum[:]...)
}

// SignHubBatch is the hub's signature of a download batch (Ed25519,
// deterministic: every node of the hub signs the same bytes alike),
// base64.
func SignHubBatch(key ed25519.PrivateKey, date, asked, country, tag, next string, body []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, HubMessage(date, asked, country, tag, next, body)))
}

// VerifyHubBatch checks the hub's signature of a download batch.
func VerifyHubBatch(pub ed25519.PublicKey, date, asked, country, tag, next string, body []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || !ed25519.Verify(pub, HubMessage(date, asked, country, tag, next, body), sig) {
		return errors.New("efgs: the hub's signature of the download batch does not verify")
	}
	return nil
}
