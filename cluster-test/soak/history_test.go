package soak

import (
	"strings"
	"testing"
	"time"
)

// op builds an operation on code "c" over [from, to] milliseconds.
func op(client int, kind OpKind, outcome Outcome, claimed bool, from, to int) Op {
	base := time.Unix(1_700_000_000, 0)
	return Op{Client: client, Code: "c", Kind: kind, Outcome: outcome, Claimed: claimed,
		Call: base.Add(time.Duration(from) * time.Millisecond), Return: base.Add(time.Duration(to) * time.Millisecond)}
}

func TestCheckLinearizable(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		ok   bool
	}{
		{"claim then refused", []Op{op(0, Claim, OK, false, 0, 10), op(1, Claim, Refused, false, 20, 30)}, true},
		{"concurrent claims, one wins", []Op{op(0, Claim, OK, false, 0, 30), op(1, Claim, Refused, false, 5, 20)}, true},
		{"code used twice", []Op{op(0, Claim, OK, false, 0, 10), op(1, Claim, OK, false, 20, 30)}, false},
		{"code used twice, concurrently", []Op{op(0, Claim, OK, false, 0, 30), op(1, Claim, OK, false, 5, 20)}, false},
		{"refused by a node that did not know the code yet", []Op{op(0, Claim, Refused, false, 0, 10), op(1, Claim, OK, false, 20, 30)}, true},
		{"refused, then used twice", []Op{op(0, Claim, Refused, false, 0, 10), op(1, Claim, OK, false, 20, 30), op(2, Claim, OK, false, 40, 50)}, false},
		{"stale read after a claim", []Op{op(0, Claim, OK, false, 0, 10), op(1, Read, OK, false, 20, 30)}, false},
		{"read during a claim sees either", []Op{op(0, Claim, OK, false, 0, 30), op(1, Read, OK, false, 5, 10), op(2, Read, OK, true, 12, 20)}, true},
		{"reads going back in time", []Op{op(0, Claim, OK, false, 0, 100), op(1, Read, OK, true, 5, 10), op(2, Read, OK, false, 20, 30)}, false},
		{"unknown claim may land late", []Op{op(0, Claim, Unknown, false, 0, 1), op(1, Read, OK, false, 20, 30), op(2, Read, OK, true, 40, 50)}, true},
		{"unknown claim may never land", []Op{op(0, Claim, Unknown, false, 0, 1), op(1, Claim, OK, false, 20, 30)}, true},
		{"unknown claim lands once", []Op{op(0, Claim, Unknown, false, 0, 1), op(1, Read, OK, true, 20, 30), op(2, Read, OK, false, 40, 50)}, false},
		{"unanswered read is dropped", []Op{op(0, Claim, OK, false, 0, 10), op(1, Read, Unknown, false, 20, 30)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, bad := CheckLinearizable(tc.ops, 10*time.Second)
			if ok != tc.ok {
				t.Fatalf("linearizable = %v, want %v; bad history:\n%s", ok, tc.ok, bad)
			}
			if !ok && bad == "" {
				t.Fatal("a rejected history came without the bad history")
			}
		})
	}
}

// The bad history printed is the smallest failing code's, not the whole.
func TestCheckLinearizableNamesMinimalHistory(t *testing.T) {
	var ops []Op
	for i := range 20 {
		good := op(i, Claim, OK, false, i*10, i*10+5)
		good.Code = "good" + string(rune('a'+i))
		ops = append(ops, good)
	}
	twice := []Op{op(0, Claim, OK, false, 0, 10), op(1, Claim, OK, false, 20, 30)}
	big := []Op{op(0, Claim, OK, false, 0, 10), op(1, Read, OK, false, 20, 30), op(2, Read, OK, false, 40, 50)}
	for i := range big {
		big[i].Code = "big"
	}
	ops = append(append(ops, big...), twice...)
	ok, bad := CheckLinearizable(ops, 10*time.Second)
	if ok {
		t.Fatal("a history with a code used twice passed")
	}
	if lines := strings.Split(bad, "\n"); len(lines) != 2 || !strings.Contains(bad, "claim c -> ok") {
		t.Fatalf("bad history is not the two claims of code c:\n%s", bad)
	}
}
