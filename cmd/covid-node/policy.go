package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/covid-backend/covid-backend/api"
)

// policyCmd shows and changes the region policy (retention, padding, code
// lifetime, SMS quotas), which every node follows whatever its flags say.
func policyCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("policy: want show or set")
	}
	switch args[0] {
	case "show":
		return list(ctx, "policy show", "/v1/admin/policy", args[1:], stdout)
	case "set":
		var req api.PolicyRequest
		var minKeys, jitter uint
		c, err := subcommand("policy set", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.Retention, "retention", "", "how long batches and unpublished keys are kept, e.g. 336h")
			fs.StringVar(&req.CodeTTL, "code-ttl", "", "how long a one-time code stays valid, e.g. 24h")
			fs.UintVar(&minKeys, "seal-min-keys", 0, "pad each batch up to this many keys instead of by the day")
			fs.UintVar(&jitter, "seal-padding-jitter", 0, "add up to this many padding keys more, at random")
			fs.BoolVar(&req.NoPadding, "no-padding", false, "turn padding off")
			fs.Func("padding-keys-per-day", "pad by the day with this budget: a batch at every seal interval, of a size drawn around it spread over the day's seals", uintFlag(&req.PaddingKeysPerDay))
			fs.Func("sms-per-hour", "codes the region sends by SMS in any hour, at most (default 1000)", uintFlag(&req.SMSPerHour))
			fs.Func("sms-per-number-per-day", "codes sent by SMS to one number in any 24 hours, at most (default 3)", uintFlag(&req.SMSPerNumberPerDay))
			fs.Func("codes-per-provider-per-day", "codes one provider issues in any 24 hours, at most (default 5000)", uintFlag(&req.CodesPerProviderPerDay))
		})
		if err != nil {
			return err
		}
		if minKeys > 0 {
			v := uint32(minKeys)
			req.SealMinKeys = &v
		}
		if jitter > 0 {
			v := uint32(jitter)
			req.SealPaddingJitter = &v
		}
		var out api.PolicyView
		if err := c.do(ctx, http.MethodPut, "/v1/admin/policy", req, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	return fmt.Errorf("policy: unknown subcommand %q", args[0])
}

// uintFlag parses a flag of at least 1 into a uint32.
func uintFlag(into *uint32) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil || v == 0 {
			return errors.New("want a whole number of at least 1")
		}
		*into = uint32(v)
		return nil
	}
}
