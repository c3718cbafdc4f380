// Package verify holds the rules of the verification service's device API
// (/api/verify, /api/certificate) and issuing API (/api/issue,
// /api/batch-issue, /api/checkcodestatus, /api/expirecode), as existing
// GAEN apps and lab systems speak them to the reference verification
// server: field names, the accept hierarchy, error codes and statuses,
// code formats, date rules, and the ES256 tokens and certificates. The
// replicated records (codes, tokens, API keys) live in package fsm; this
// package decides nothing that needs them.
package verify
