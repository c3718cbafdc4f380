package portal

import (
	"reflect"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/verify"
)

// A bulk line's id is its provider's, its file's and its line number's:
// the same file sent again gives the same ids, and two lines alike, two
// files or two providers never share one.
func TestBulkUUID(t *testing.T) {
	file := []byte("testType\nlikely\nlikely\n")
	first := bulkUUID("lab", file, 2)
	for name, tc := range map[string]struct {
		id   string
		same bool
	}{
		"the same file again":           {bulkUUID("lab", append([]byte(nil), file...), 2), true},
		"the next line, of equal text":  {bulkUUID("lab", file, 3), false},
		"another provider's equal file": {bulkUUID("clinic", file, 2), false},
		"another file of the provider":  {bulkUUID("lab", []byte("testType\nlikely\n"), 2), false},
	} {
		if (tc.id == first) != tc.same {
			t.Errorf("%s: %s against %s, want same %v", name, tc.id, first, tc.same)
		}
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
