// Package export reads and writes GAEN export files (export.zip holding
// export.bin and export.sig), the format every Google/Apple Exposure
// Notification app downloads, so that apps built for the reference key server
// (google/exposure-notifications-server) work with ours unchanged.
//
// Encode is deterministic: the same File and signing keys give the same bytes
// on every node running the same build, so any node of a region can produce
// (and serve) an export without coordination. Decode is strict, because its
// input may come from the network (federation, mirrors, tests of our own
// output against the golden files).
//
// This package imports only the standard library and protobuf (DESIGN.md).
package export
