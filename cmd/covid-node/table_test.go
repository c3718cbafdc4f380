package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// An admin answer prints for people: each list of objects as a table
// (the columns that name a row first), other fields as name and value,
// lists of text joined, nested values as compact JSON; an empty list
// says so.
func TestPrintTables(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"one list", `{"keys":[{"revoked":false,"name":"app","kind":"device","created":"2026-12-05T10:00:00Z"},{"name":"lab","kind":"admin","provider":"lab","revoked":true}]}`,
			[]string{"NAME  PROVIDER  KIND    CREATED               REVOKED", "app             device  2026-12-05T10:00:00Z  false", "lab   lab       admin                         true"}},
		{"fields and lists", `{"region":"SA","origins":[{"origin":"SA","batches":3}],"trusted":[]}`,
			[]string{"region  SA", "ORIGINS:", "ORIGIN  BATCHES", "SA      3", "TRUSTED:", "(none)"}},
		{"a document", `{"retention_seconds":1209600,"apps":["a","b"],"limits":{"x":1}}`,
			[]string{"apps               a,b", `limits             {"x":1}`, "retention_seconds  1209600"}},
	} {
		var b bytes.Buffer
		if err := printTables(&b, []byte(tc.in)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := strings.Split(strings.TrimSpace(b.String()), "\n")
		for i := range got {
			got[i] = strings.TrimRight(got[i], " ")
		}
		for _, want := range tc.want {
			if !slices.Contains(got, want) {
				t.Errorf("%s: no line %q in\n%s", tc.name, want, b.String())
			}
		}
	}
	if err := printTables(&bytes.Buffer{}, []byte(`[1,2]`)); err == nil {
		t.Error("a JSON list printed as tables")
	}
}
