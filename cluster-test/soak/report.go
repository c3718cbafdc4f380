package soak

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Tally counts what a run did: faults by kind, operations by kind and
// outcome. Safe for concurrent use.
type Tally struct {
	mu      sync.Mutex
	faults  map[FaultKind]int
	ops     map[string]map[Outcome]int
	answers map[string]map[string]int
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{faults: map[FaultKind]int{}, ops: map[string]map[Outcome]int{}, answers: map[string]map[string]int{}}
}

// Fault counts one injected fault.
func (t *Tally) Fault(k FaultKind) {
	t.mu.Lock()
	t.faults[k]++
	t.mu.Unlock()
}

// Op counts one client operation (upload, claim, download...) by outcome.
func (t *Tally) Op(kind string, o Outcome) {
	t.mu.Lock()
	if t.ops[kind] == nil {
		t.ops[kind] = map[Outcome]int{}
	}
	t.ops[kind][o]++
	t.mu.Unlock()
}

// Answer counts one answer that was not a success, by what it was (a
// status and error code, or the transport's failure).
func (t *Tally) Answer(kind, answer string) {
	t.mu.Lock()
	if t.answers[kind] == nil {
		t.answers[kind] = map[string]int{}
	}
	t.answers[kind][answer]++
	t.mu.Unlock()
}

// Count returns how often an operation kind had an outcome.
func (t *Tally) Count(kind string, o Outcome) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ops[kind][o]
}

// Result is what the invariants found after healing.
type Result struct {
	Seed             uint64
	Duration         time.Duration
	KeysAcknowledged int
	KeysLost         int
	// Revisions are keys revised from likely to confirmed.
	RevisionsAcknowledged int
	RevisionsLost         int
	// KeysNotExported and KeysNotFederated count acknowledged keys and
	// revisions missing from the region's exports, and from its files on
	// the nodes of the other regions.
	KeysNotExported      int
	KeysNotFederated     int
	DuplicateCodeUses    int
	DifferingFiles       int
	Convergence          time.Duration
	Linearizable         bool
	LinearizabilityCheck string
}

// Table is the run's report: faults by kind, operations by kind and
// outcome, and the invariants' figures.
func (t *Tally) Table(r Result) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "soak: seed %d, %v of faults\n\n", r.Seed, r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "| fault | injected |\n| --- | ---: |\n")
	total := 0
	for _, k := range Kinds {
		fmt.Fprintf(&b, "| %s | %d |\n", k, t.faults[k])
		total += t.faults[k]
	}
	fmt.Fprintf(&b, "| all | %d |\n\n", total)
	fmt.Fprintf(&b, "| operation | ok | refused | unknown |\n| --- | ---: | ---: | ---: |\n")
	kinds := make([]string, 0, len(t.ops))
	for k := range t.ops {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		o := t.ops[k]
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", k, o[OK], o[Refused], o[Unknown])
	}
	fmt.Fprintf(&b, "\n| operation | answer other than success | count |\n| --- | --- | ---: |\n")
	for _, k := range sortedKeys(t.answers) {
		for _, a := range sortedKeys(t.answers[k]) {
			fmt.Fprintf(&b, "| %s | %s | %d |\n", k, a, t.answers[k][a])
		}
	}
	lin := "yes"
	if !r.Linearizable {
		lin = "NO"
	}
	fmt.Fprintf(&b, "\n| invariant | figure |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| keys acknowledged | %d |\n| keys lost (must be 0) | %d |\n", r.KeysAcknowledged, r.KeysLost)
	fmt.Fprintf(&b, "| revisions acknowledged | %d |\n| revisions lost (must be 0) | %d |\n", r.RevisionsAcknowledged, r.RevisionsLost)
	fmt.Fprintf(&b, "| keys or revisions missing from exports (must be 0) | %d |\n", r.KeysNotExported)
	fmt.Fprintf(&b, "| keys or revisions missing from other regions (must be 0) | %d |\n", r.KeysNotFederated)
	fmt.Fprintf(&b, "| duplicate code uses (must be 0) | %d |\n| files differing between nodes (must be 0) | %d |\n", r.DuplicateCodeUses, r.DifferingFiles)
	fmt.Fprintf(&b, "| code claims and reads linearizable | %s |\n| convergence after the last heal | %.1f s |\n", lin, r.Convergence.Seconds())
	return b.String()
}

// Missing lists the acknowledged keys a node does not hold.
func Missing(acked []string, have map[string]bool) []string {
	var missing []string
	for _, k := range acked {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	return missing
}

// Reused lists the codes (or tokens) that admitted more than one upload.
func Reused(uploadsByCode map[string]int) []string {
	var reused []string
	for _, code := range sortedKeys(uploadsByCode) {
		if uploadsByCode[code] > 1 {
			reused = append(reused, code)
		}
	}
	return reused
}

// Differing lists the file names whose bytes (by digest) differ between
// nodes: digests maps node to file name to digest.
func Differing(digests map[string]map[string]string) []string {
	first := map[string]string{}
	bad := map[string]bool{}
	for _, node := range sortedKeys(digests) {
		for name, d := range digests[node] {
			if f, ok := first[name]; !ok {
				first[name] = d
			} else if f != d {
				bad[name] = true
			}
		}
	}
	return sortedKeys(bad)
}
