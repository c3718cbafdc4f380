// Command benchsummary prints the figures of issue-level targets side by
// side from `go test -bench` output: CPU per upload against the sink, CPU
// per request and requests per second against nginx, leader failover and
// federation latency. `make bench` pipes the cluster benchmarks through it,
// so that one run ends with one table (Markdown, for the README's measured
// table) instead of figures spread over a long log. With -count N a figure
// shows the range of its N runs.
//
//	go test -run XXX -bench . -benchtime 1x ./cluster-test/ | benchsummary
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	runs, err := parse(io.TeeReader(os.Stdin, os.Stdout))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsummary:", err)
		os.Exit(1)
	}
	fmt.Println()
	fmt.Print(render(runs))
}

// results are the runs of each benchmark (name without the GOMAXPROCS
// suffix), each a metric's value by unit.
type results map[string][]map[string]float64

// parse reads benchmark result lines ("BenchmarkX-2  1  5 ns/op  2.3 ratio")
// and skips everything else (logs, RUN lines, PASS).
func parse(r io.Reader) (results, error) {
	out := results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		metrics := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			var v float64
			if _, err := fmt.Sscan(f[i], &v); err != nil {
				metrics = nil
				break
			}
			metrics[f[i+1]] = v
		}
		if metrics != nil {
			name := trimProcs(f[0])
			out[name] = append(out[name], metrics)
		}
	}
	return out, sc.Err()
}

// trimProcs drops the "-N" GOMAXPROCS suffix of a benchmark name.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return name
		}
	}
	return name[:i]
}

// span formats a metric over every run of a benchmark as "a" or "a–b"
// (min–max) with the given precision and unit, or "" without runs.
func (r results) span(bench, metric string, prec int, unit string) string {
	var lo, hi float64
	n := 0
	for _, m := range r[bench] {
		v, ok := m[metric]
		if !ok {
			continue
		}
		if n == 0 || v < lo {
			lo = v
		}
		if n == 0 || v > hi {
			hi = v
		}
		n++
	}
	switch {
	case n == 0:
		return ""
	case fmt.Sprintf("%.*f", prec, lo) == fmt.Sprintf("%.*f", prec, hi):
		return fmt.Sprintf("%.*f%s", prec, lo, unit)
	default:
		return fmt.Sprintf("%.*f–%.*f%s", prec, lo, prec, hi, unit)
	}
}
