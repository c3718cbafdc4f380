package account

import (
	"errors"

	"github.com/covid-backend/covid-backend/sealed"
)

// totpBox seals second-factor secrets; its mark starts a sealed secret,
// and a secret without it is one the previous release stored in clear
// (base32 text never starts with a zero byte).
func totpBox() sealed.Box {
	return sealed.Box{Mark: "\x00totp1", Purpose: "covid-backend totp secrets v1"}
}

// SealTOTP seals an account's TOTP secret for the replicated state, bound
// to the account's email (sealed.Box): a snapshot, a raft log or a backup
// alone holds no second factor, and a sealed secret moved to another
// account does not open.
func SealTOTP(codeKey []byte, email, secret string) []byte {
	return totpBox().Seal(codeKey, email, []byte(secret))
}

// OpenTOTP opens a stored TOTP secret with any of the region's code keys
// (so that secrets outlive a key rotation); a secret stored in clear by
// the previous release is returned as it is.
func OpenTOTP(codeKeys [][]byte, email string, stored []byte) (string, error) {
	if !TOTPSealed(stored) {
		return string(stored), nil
	}
	secret, err := totpBox().Open(codeKeys, email, stored)
	if err != nil {
		return "", errors.New("the second factor's secret does not open with this region's code keys")
	}
	return string(secret), nil
}

// TOTPSealed tells whether a stored TOTP secret is sealed.
func TOTPSealed(stored []byte) bool { return totpBox().Sealed(stored) }
