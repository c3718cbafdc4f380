package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestParsePoolKeys(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	short := base64.StdEncoding.EncodeToString([]byte("short"))
	cases := []struct {
		name, file string
		keys       int
		first      byte
		err        string
	}{
		{"one key", k1 + "\n", 1, 1, ""},
		{"rotation: new key first, old accepted", k2 + "\n" + k1 + "\n", 2, 2, ""},
		{"blank lines ignored", "\n" + k1 + "\n\n", 1, 1, ""},
		{"a short key", k1 + "\n" + short + "\n", 0, 0, "key 2"},
		{"not base64", "???", 0, 0, "key 1"},
		{"empty", "\n", 0, 0, "no key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parsePoolKeys([]byte(tc.file))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(keys) != tc.keys || keys[0][0] != tc.first {
				t.Fatalf("keys %d (first %v), err %v; want %d keys, first of %d", len(keys), keys, err, tc.keys, tc.first)
			}
		})
	}
}
