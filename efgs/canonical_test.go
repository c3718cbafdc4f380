package efgs_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// vector is one line of the gateway's vectors: a key and the base64 of
// its canonical bytes.
type vector struct {
	key       *efgspb.DiagnosisKey
	canonical string
}

// readVectors reads testdata/efgs/canonical-key-vectors.txt (the EFGS
// project's own, see its README), checking each field's base64 as it goes.
func readVectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open("../testdata/efgs/canonical-key-vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<16)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Split(sc.Text(), "|")
		if len(fields) != 17 {
			t.Fatalf("line %d: %d fields", n, len(fields))
		}
		bytesOf := func(i int) []byte {
			var b []byte
			for _, v := range list(fields[i]) {
				x, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("line %d field %d: %v", n, i+1, err)
				}
				b = append(b, byte(x))
			}
			if got := base64.StdEncoding.EncodeToString(b); got != fields[i+1] {
				t.Fatalf("line %d field %d: the vectors' own base64 %s, of the value %s", n, i+2, fields[i+1], got)
			}
			return b
		}
		u32 := func(i int) uint32 { return binary.BigEndian.Uint32(bytesOf(i)) }
		origin := list(fields[10])
		if len(origin) != 1 {
			t.Fatalf("line %d: origin %v", n, origin)
		}
		out = append(out, vector{key: &efgspb.DiagnosisKey{
			KeyData: bytesOf(0), RollingStartIntervalNumber: u32(2), RollingPeriod: u32(4),
			TransmissionRiskLevel: int32(u32(6)), VisitedCountries: list(fields[8]), Origin: origin[0],
			ReportType: efgspb.ReportType(u32(12)), DaysSinceOnsetOfSymptoms: int32(u32(14)),
		}, canonical: fields[16]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// list is "[a,b,c]" as its items.
func list(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// Each of the gateway's 5,000 keys gives exactly the bytes it signs.
func TestCanonicalVectors(t *testing.T) {
	vectors := readVectors(t)
	if len(vectors) != 5000 {
		t.Fatalf("%d vectors, want 5000", len(vectors))
	}
	for i, v := range vectors {
		if got := base64.StdEncoding.EncodeToString(efgs.CanonicalBytes(v.key)); got != v.canonical {
			t.Fatalf("vector %d: %s, want %s", i+1, got, v.canonical)
		}
	}
}

// The gateway's worked example (its fact sheet), and the fields the
// vectors never vary: no visited countries, a negative days since onset,
// text outside ASCII.
func TestCanonicalExamples(t *testing.T) {
	key := func(countries []string, origin string, dsos int32) *efgspb.DiagnosisKey {
		return &efgspb.DiagnosisKey{KeyData: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, RollingStartIntervalNumber: 2700000,
			RollingPeriod: 144, TransmissionRiskLevel: 0x7FFFFFFF, VisitedCountries: countries, Origin: origin,
			ReportType: efgspb.ReportType_CONFIRMED_TEST, DaysSinceOnsetOfSymptoms: dsos}
	}
	for _, tc := range []struct {
		name string
		key  *efgspb.DiagnosisKey
		want string
	}{
		{"the fact sheet's example", key([]string{"DE", "NL"}, "DE", -3), "AAECAwQFBgcICQoLDA0ODw==.ACky4A==.AAAAkA==.f////w==.REUsTkw=.REU=.AAAAAQ==./////Q==."},
		{"no visited countries", key(nil, "DE", 0), "AAECAwQFBgcICQoLDA0ODw==.ACky4A==.AAAAkA==.f////w==..REU=.AAAAAQ==.AAAAAA==."},
		{"an origin outside ASCII", key(nil, "DÉ", 0), "AAECAwQFBgcICQoLDA0ODw==.ACky4A==.AAAAkA==.f////w==..RD8=.AAAAAQ==.AAAAAA==."},
	} {
		if got := string(efgs.CanonicalBytes(tc.key)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// A batch's bytes are its keys' canonical bytes in the order of their
// base64, whatever order the keys come in.
func TestBatchBytes(t *testing.T) {
	vectors := readVectors(t)
	sorted := slices.Clone(vectors)
	slices.SortFunc(sorted, func(a, b vector) int { return strings.Compare(a.canonical, b.canonical) })
	var want []byte
	for _, v := range sorted {
		c, _ := base64.StdEncoding.DecodeString(v.canonical)
		want = append(want, c...)
	}
	keys := make([]*efgspb.DiagnosisKey, len(vectors))
	for i, v := range vectors {
		keys[i] = v.key
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	if got := efgs.BatchBytes(keys); !bytes.Equal(got, want) {
		t.Fatalf("batch bytes of the 5,000 keys shuffled: %d bytes, want %d, differing", len(got), len(want))
	}
}
