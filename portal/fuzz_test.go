package portal

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecodeSession: a session cookie is whatever a stranger sends; it is
// refused unless signed with the key, and never panics.
func FuzzDecodeSession(f *testing.F) {
	key := []byte("fuzz session key")
	good := session{Email: "w@lab.example", Epoch: 1, Issued: 1_800_000_000, LastSeen: 1_800_000_000}.encode(key)
	for _, s := range []string{good, "", ".", "a.b", good + "x", "d3xsYWIuZXhhbXBsZXwxfDF8MQ.sig"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := decodeSession(key, raw)
		if err != nil {
			return
		}
		if again := s.encode(key); again != raw {
			t.Fatalf("%q decoded to %+v, which encodes as %q: a cookie not signed as made", raw, s, again)
		}
		_ = s.live(time.Unix(1_800_000_000, 0), sessionMaxAge)
	})
}

// FuzzOpenFlash: a flash cookie is whatever a stranger sends; it opens
// only when sealed with the key, for that page and account, and never
// panics.
func FuzzOpenFlash(f *testing.F) {
	key := []byte("fuzz session key")
	plain, _ := json.Marshal(flash{Page: "issued", Email: "w@lab.example", Data: json.RawMessage(`{"Code":"12345678"}`)})
	good := sealFlash(key, plain)
	for _, s := range []string{good, "", "AAAA", good[:len(good)-2], good + "A"} {
		f.Add(s)
	}
	var shown issued
	if err := openFlash(key, good, "issued", "w@lab.example", &shown); err != nil || shown.Code != "12345678" {
		f.Fatalf("a sealed flash does not open: %v %+v", err, shown)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// Only the seeds were sealed with the key (each worker seals its
		// own, with a nonce of its own): whatever opens holds their code.
		var got issued
		if openFlash(key, raw, "issued", "w@lab.example", &got) == nil && got.Code != "12345678" {
			t.Fatalf("%q opened to %+v without being sealed with the key", raw, got)
		}
		if openFlash(key, raw, "apikey", "w@lab.example", &got) == nil || openFlash(key, raw, "issued", "x@lab.example", &got) == nil {
			t.Fatalf("%q opened for another page or account", raw)
		}
	})
}

// FuzzReadBulk: a bulk file is whatever a worker's spreadsheet saved, or a
// stranger with a session sends; it reads or is refused with a message,
// never panics, never yields more than maxBulkRows lines, and its line
// numbers rise.
func FuzzReadBulk(f *testing.F) {
	f.Add([]byte("testType,testDate\nconfirmed,2026-12-01\n"))
	f.Add([]byte("\xef\xbb\xbfTestType;Test Date;Phone\r\nconfirmed;2026-12-01;+49 151 23456789\r\n;;\r\n"))
	f.Add([]byte("test_type\tuuid\n\"likely\"\"\tx\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := readBulk(bytes.NewReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a message")
			}
			return
		}
		if len(rows) > maxBulkRows {
			t.Fatalf("%d lines read, at most %d", len(rows), maxBulkRows)
		}
		for i := 1; i < len(rows); i++ {
			if rows[i].line <= rows[i-1].line {
				t.Fatalf("line numbers %d then %d", rows[i-1].line, rows[i].line)
			}
		}
	})
}
