// Package publish implements the request side of the GAEN key server publish
// API v1 (POST /v1/publish) as google/exposure-notifications-server v1.17.0
// does it, so that apps and verification servers built for the reference work
// unchanged: it decodes the JSON body, verifies the health authority's
// verification certificate (an ES256 JWT) and the tekmac that binds it to the
// keys, applies the per-key rules, and returns the keys to store as
// fsmpb.Key values for the replicated state machine.
//
// The package has no HTTP code: the api layer reads the body, calls
// DecodeRequest and Validate, opens the revision token, names the upload
// (SubmissionID) and proposes every verified key in one version 2 publish
// command; the state machine decides which keys are new, resent or
// revised. It writes a Response (always with Padding).
//
// The wire facts are summarised in docs/design.md; where this package
// deliberately differs from the reference the doc comment says so.
package publish
