package verify

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// defaultSMSPerHour bounds the SMS one node sends in an hour unless
// configured otherwise: a lab's bulk issue of a few hundred codes goes
// out, an SMS pumping run stops there.
const defaultSMSPerHour = 1000

// Phones are the rules a phone number meets before a code is sent to it.
// Anyone with the device API key (it ships in every app) asks for user
// reports, so the numbers are how SMS pumping pays: only mobile numbers
// of the regions served get an SMS, and a node sends at most PerHour.
type Phones struct {
	// Region (ISO 3166-1, "DE") reads a number written without a country
	// code; empty: numbers must start with + and their country code.
	Region string
	// Allowed are the regions whose numbers get an SMS (default: Region
	// alone; with neither, any region's mobile numbers).
	Allowed []string
	// PerHour bounds the SMS this node sends in an hour (default 1000).
	PerHour int
}

// Validate refuses regions phone numbers are not known for.
func (p Phones) Validate() error {
	for _, r := range append([]string{p.Region}, p.Allowed...) {
		if r != "" && phonenumbers.GetCountryCodeForRegion(strings.ToUpper(r)) == 0 {
			return fmt.Errorf("phone region %q: want a country code of ISO 3166-1, such as DE", r)
		}
	}
	return nil
}

func (p Phones) perHour() int {
	if p.PerHour <= 0 {
		return defaultSMSPerHour
	}
	return p.PerHour
}

func (p Phones) allowed() []string {
	if len(p.Allowed) == 0 && p.Region != "" {
		return []string{p.Region}
	}
	return p.Allowed
}

// Check reads a phone number as its owner writes it ("0151 23456789",
// "+49 151 23456789") and returns it in international format (E.164) for
// the gateway, or refuses it: not a number, not valid, not a mobile
// number, or of a region not served.
func (p Phones) Check(raw string) (string, *Error) {
	raw = strings.TrimSpace(raw)
	if p.Region == "" && !strings.HasPrefix(raw, "+") {
		return "", fail(http.StatusBadRequest, CodePhoneInvalid, "phone: write it with its country code (+…)")
	}
	num, err := phonenumbers.Parse(raw, strings.ToUpper(p.Region))
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", fail(http.StatusBadRequest, CodePhoneInvalid, "phone: not a valid phone number")
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if allowed := p.allowed(); len(allowed) > 0 && !slices.ContainsFunc(allowed, func(r string) bool { return strings.EqualFold(r, region) }) {
		return "", fail(http.StatusBadRequest, CodePhoneInvalid, "phone: numbers of "+region+" are not served here")
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return "", fail(http.StatusBadRequest, CodePhoneInvalid, "phone: not a mobile number (codes go out by SMS)")
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
