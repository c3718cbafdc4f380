// Package verify holds the rules of the verification service's device API
// (/api/verify, /api/certificate) and issuing API (/api/issue,
// /api/batch-issue, /api/checkcodestatus, /api/expirecode), as existing
// GAEN apps and lab systems speak them to the reference verification
// server: field names, the accept hierarchy, error codes and statuses,
// code formats, date rules, and the ES256 tokens and certificates; and the
// issuing service (Issuer), through which the issuing API, user reports
// and the portal issue codes and send them by SMS. The replicated records
// (codes, tokens, API keys) live in package fsm; the Issuer commits them
// through a command.Applier and reads none.
package verify
