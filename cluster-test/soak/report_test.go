package soak

import (
	"reflect"
	"strings"
	"testing"
)

func TestInvariants(t *testing.T) {
	if got := Missing([]string{"a", "b", "c"}, map[string]bool{"a": true, "c": true}); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("Missing = %v, want [b]", got)
	}
	if got := Missing([]string{"a"}, map[string]bool{"a": true}); got != nil {
		t.Fatalf("Missing = %v, want none", got)
	}
	if got := Reused(map[string]int{"x": 1, "y": 2, "z": 0}); !reflect.DeepEqual(got, []string{"y"}) {
		t.Fatalf("Reused = %v, want [y]", got)
	}
	digests := map[string]map[string]string{
		"n1": {"f1": "aa", "f2": "bb"},
		"n2": {"f1": "aa", "f2": "cc"},
		"n3": {"f1": "aa"},
	}
	if got := Differing(digests); !reflect.DeepEqual(got, []string{"f2"}) {
		t.Fatalf("Differing = %v, want [f2]", got)
	}
}

func TestTable(t *testing.T) {
	tally := NewTally()
	tally.Fault(Kill)
	tally.Fault(Kill)
	tally.Fault(Pause)
	tally.Op("upload", OK)
	tally.Op("upload", Unknown)
	tally.Op("claim", Refused)
	tally.Answer("claim", "400 code_invalid")
	table := tally.Table(Result{Seed: 9, KeysAcknowledged: 14, RevisionsAcknowledged: 3, KeysNotFederated: 2, Linearizable: true})
	for _, want := range []string{"seed 9", "| kill -9 and restart | 2 |", "| SIGSTOP, SIGCONT | 1 |", "| all | 3 |",
		"| upload | 1 | 0 | 1 |", "| claim | 0 | 1 | 0 |", "| keys lost (must be 0) | 0 |", "| revisions acknowledged | 3 |",
		"| keys or revisions missing from other regions (must be 0) | 2 |", "| claim | 400 code_invalid | 1 |", "| code claims and reads linearizable | yes |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
