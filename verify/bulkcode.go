package verify

import (
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/sealed"
)

// BulkCodes seals the short code of a code the portal's bulk issue made
// for a worker to hand out, bound to the code's uuid, so that the run's
// results can be shown again (a reload, a file sent again after an
// interruption, a CSV download) while the state holds no code in clear;
// the state machine drops it once the code is used or expired.
func BulkCodes() sealed.Box {
	return sealed.Box{Mark: "\x00bulk1", Purpose: "covid-backend bulk codes v1"}
}

// OpenBulkCode is a bulk code's short code, when the state still keeps it
// sealed and one of the code keys opens it.
func OpenBulkCode(codeKeys [][]byte, c *fsmpb.VerificationCode) (string, bool) {
	if len(c.GetSealedCode()) == 0 {
		return "", false
	}
	code, err := BulkCodes().Open(codeKeys, c.GetUuid(), c.GetSealedCode())
	return string(code), err == nil
}
