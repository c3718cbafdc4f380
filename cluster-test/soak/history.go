// Package soak holds what the fault soak (cluster-test's TestSoak) records
// and judges, apart from the processes it drives: the history of code
// claims and consistent reads with its linearizability check (porcupine,
// against a model of a single-use code register), the nemesis schedule
// drawn from a seed, the invariants checked after healing, and the table
// the run prints. Each part has unit tests of its own, including histories
// that must be rejected, so the checker is shown to fail when it should.
package soak

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// OpKind is what a client asked of a one-time code.
type OpKind int

const (
	// Claim exchanges the code for a token (POST /api/verify).
	Claim OpKind = iota
	// Read asks whether the code is claimed, as a consistent read
	// (POST /api/checkcodestatus?consistent=true).
	Read
)

// Outcome is what the client learned.
type Outcome int

const (
	// OK: the claim gave a token, or the read answered.
	OK Outcome = iota
	// Refused: the claim was refused (code_invalid). The API does not
	// say whether the code was used or is not known (yet) to the node
	// asked, so as to tell a guesser nothing: a refusal is legal in any
	// state and changes nothing. Single use rests on the claims that
	// succeeded and on what consistent reads saw.
	Refused
	// Unknown: no definite answer (a timeout, a cut connection, a 5xx
	// after the leader died); the claim may or may not have taken effect.
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"ok", "refused", "unknown"}[o]
}

// Op is one operation on one code, with when it was invoked and when its
// answer came (Return is ignored for Unknown: it may take effect later).
type Op struct {
	Client  int
	Code    string
	Kind    OpKind
	Outcome Outcome
	// Claimed is what a read answered.
	Claimed      bool
	Call, Return time.Time
}

func (o Op) String() string {
	what := "claim"
	result := o.Outcome.String()
	if o.Kind == Read {
		what = "read"
		if o.Outcome == OK {
			result = fmt.Sprintf("claimed=%v", o.Claimed)
		}
	}
	return fmt.Sprintf("client %d %s %s -> %s [%s, %s]", o.Client, what, o.Code, result,
		o.Call.Format("15:04:05.000"), o.Return.Format("15:04:05.000"))
}

// History collects operations from concurrent clients.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records one completed (or abandoned) operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of what was recorded.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// codeModel is a single-use code register: a claim succeeds only on an
// unused code and uses it; a refusal changes nothing; a read tells which.
// An unknown claim may have taken effect at any point after its call (or
// never, which is the same as at the end of the history): it is a claim
// that leaves the code used, whatever the state.
var codeModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byCode := map[string][]porcupine.Operation{}
		for _, op := range history {
			code := op.Input.(input).code
			byCode[code] = append(byCode[code], op)
		}
		codes := make([]string, 0, len(byCode))
		for c := range byCode {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		parts := make([][]porcupine.Operation, 0, len(codes))
		for _, c := range codes {
			parts = append(parts, byCode[c])
		}
		return parts
	},
	Init: func() any { return false },
	Step: func(state, in, out any) (bool, any) {
		used, op, res := state.(bool), in.(input), out.(output)
		switch {
		case op.kind == Read:
			return res.claimed == used, used
		case res.outcome == OK:
			return !used, true
		case res.outcome == Refused:
			return true, used
		default:
			return true, true
		}
	},
	DescribeOperation: func(in, out any) string {
		return in.(input).describe(out.(output))
	},
}

type input struct {
	kind OpKind
	code string
}

type output struct {
	outcome Outcome
	claimed bool
}

func (i input) describe(o output) string {
	if i.kind == Read {
		return fmt.Sprintf("read(%s) -> claimed=%v", i.code, o.claimed)
	}
	return fmt.Sprintf("claim(%s) -> %s", i.code, o.outcome)
}

// never stands for the return of an operation whose answer never came.
const never = int64(1) << 62

// CheckLinearizable checks the history against the single-use code
// register. Reads without an answer are dropped (they change nothing);
// claims without one stay, open until the end. On failure it returns the
// smallest code's history that cannot be linearized, one operation a line.
func CheckLinearizable(ops []Op, timeout time.Duration) (ok bool, bad string) {
	switch check(ops, timeout) {
	case porcupine.Ok:
		return true, ""
	case porcupine.Unknown:
		return false, fmt.Sprintf("the check did not finish within %v (%d operations)", timeout, len(ops))
	}
	// Codes are independent: the smallest code whose own history fails
	// is the minimal bad history.
	byCode := map[string][]Op{}
	for _, op := range ops {
		byCode[op.Code] = append(byCode[op.Code], op)
	}
	var worst []Op
	for _, code := range sortedKeys(byCode) {
		own := byCode[code]
		if check(own, timeout) == porcupine.Illegal && (worst == nil || len(own) < len(worst)) {
			worst = own
		}
	}
	sort.Slice(worst, func(i, j int) bool { return worst[i].Call.Before(worst[j].Call) })
	lines := make([]string, len(worst))
	for i, op := range worst {
		lines[i] = op.String()
	}
	return false, strings.Join(lines, "\n")
}

func check(ops []Op, timeout time.Duration) porcupine.CheckResult {
	var history []porcupine.Operation
	for _, op := range ops {
		if op.Kind == Read && op.Outcome != OK {
			continue
		}
		ret := op.Return.UnixNano()
		if op.Outcome == Unknown {
			ret = never
		}
		history = append(history, porcupine.Operation{ClientId: op.Client, Input: input{op.Kind, op.Code},
			Call: op.Call.UnixNano(), Output: output{op.Outcome, op.Claimed}, Return: ret})
	}
	return porcupine.CheckOperationsTimeout(codeModel, history, timeout)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
