package main

import (
	"bytes"
	"strings"
	"testing"
)

// Strings a stranger chose (an origin name in a batch, a holder URL, an
// error quoting a request) are quoted in the log: they cannot end the
// line and forge another record.
func TestLogQuotesStrangersStrings(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, "info")
	if err != nil {
		t.Fatal(err)
	}
	forged := "A\ntime=2026-01-01T00:00:00Z level=ERROR msg=\"admin token leaked\""
	logger.Warn("federation: batch rejected", "holder", forged, "reason", "origin "+forged)
	out := buf.String()
	if strings.Count(out, "\n") != 1 || strings.Contains(out, "\nlevel=") || strings.Contains(out, "\ntime=") {
		t.Fatalf("a forged string broke the record:\n%s", out)
	}
	if !strings.Contains(out, `holder="A\ntime=`) {
		t.Fatalf("the string is not quoted: %s", out)
	}
}
