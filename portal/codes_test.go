package portal

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/verify"
)

// A bulk line's id is its provider's, its content's and its place among
// lines of the same content: the same file sent again gives the same ids,
// and so do the unchanged lines of a corrected file; two lines alike, or
// two providers' lines, never share one.
func TestLineIDs(t *testing.T) {
	read := func(file string) []csvRow {
		rows, err := readBulk(strings.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	first := lineIDs("lab", read("testType,testDate\nlikely,\nlikely,\nconfirmd,2026-12-01\nnegative,\n"))
	again := lineIDs("lab", read("testType,testDate\nlikely,\nlikely,\nconfirmd,2026-12-01\nnegative,\n"))
	corrected := lineIDs("lab", read("testType,testDate\nlikely,\nlikely,\nconfirmed,2026-12-01\nnegative,\n"))
	other := lineIDs("clinic", read("testType,testDate\nlikely,\nlikely,\nconfirmd,2026-12-01\nnegative,\n"))
	switch {
	case !slices.Equal(first, again):
		t.Error("the same file again gives other ids")
	case first[0] == first[1]:
		t.Error("two lines alike share an id")
	case corrected[0] != first[0] || corrected[1] != first[1] || corrected[3] != first[3] || corrected[2] == first[2]:
		t.Errorf("a corrected file: %v, first %v (only line 3 changed)", corrected, first)
	case slices.ContainsFunc(other, func(id string) bool { return slices.Contains(first, id) }):
		t.Error("two providers share an id")
	}
}

// A CSV as spreadsheets save it is read (issue 22: a file saved by Excel,
// with a byte-order mark, semicolons and a TestType header, was refused
// with a message that blamed the header): the mark is dropped, the
// separator found, header names matched in any case and spacing, empty
// lines skipped, line numbers kept; a file without a testType column is
// refused with a message that lists the columns it found.
func TestReadBulkAsSpreadsheetsSaveIt(t *testing.T) {
	cases := []struct {
		name, file string
		want       []csvRow
	}{
		{"plain", "testType,testDate\nconfirmed,2026-12-01\n",
			[]csvRow{{2, verify.IssueRequest{TestType: "confirmed", TestDate: "2026-12-01"}}}},
		{"Excel, semicolons, BOM, CRLF", "\xef\xbb\xbfTestType;Test Date;Phone\r\nconfirmed;2026-12-01;+49 151 23456789\r\n;;\r\nlikely;2026-12-02;\r\n",
			[]csvRow{{2, verify.IssueRequest{TestType: "confirmed", TestDate: "2026-12-01", Phone: "+49 151 23456789"}},
				{4, verify.IssueRequest{TestType: "likely", TestDate: "2026-12-02"}}}},
		{"tabs, snake case", "test_type\tsymptom_date\tuuid\nnegative\t2026-11-30\tabc\n",
			[]csvRow{{2, verify.IssueRequest{TestType: "negative", SymptomDate: "2026-11-30", UUID: "abc"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBulk(strings.NewReader(tc.file))
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("read %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	_, err := readBulk(strings.NewReader("Type;Date\nconfirmed;2026-12-01\n"))
	if err == nil || !strings.Contains(err.Error(), "found: Type, Date") {
		t.Fatalf("a file without testType: %v", err)
	}
}
