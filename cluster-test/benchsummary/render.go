package main

import (
	"fmt"
	"strings"
)

// row is one line of the summary: a figure of ours, the reference point's,
// their ratio and the target the ratio is held to.
type row struct {
	what, ours, ref, ratio, target string
}

// render returns the summary as a Markdown table; rows whose benchmark did
// not run (skipped, filtered out) are left out.
func render(r results) string {
	var rows []row
	for _, c := range []string{"clients=16/spread", "clients=64/spread", "clients=16/leader", "clients=64/leader"} {
		rows = append(rows, r.uploadRows("BenchmarkUploadCPU/"+c, strings.ReplaceAll(c, "clients=", ""))...)
	}
	for _, c := range []string{"file/shared", "file/pinned", "index/shared", "index/pinned"} {
		rows = append(rows, r.downloadRows("BenchmarkDownloadVsNginx/"+c, c)...)
	}
	if s := r.span("BenchmarkFailover", "median-ms", 0, " ms"); s != "" {
		rows = append(rows, row{what: "leader failover, kill -9 to the next acknowledged upload (10 kills)",
			ours: "median " + s + ", worst " + r.span("BenchmarkFailover", "worst-ms", 0, " ms")})
	}
	if s := r.span("BenchmarkFederation/seal-to-everywhere", "p50-ms", 0, " ms"); s != "" {
		rows = append(rows, row{what: "federation, seal to served by every node of four other regions",
			ours: "p50 " + s + ", p99 " + r.span("BenchmarkFederation/seal-to-everywhere", "p99-ms", 0, " ms")})
	}
	if s := r.span("BenchmarkEFGSHub", "p50-ms", 0, " ms"); s != "" {
		rows = append(rows, row{what: "EU gateway through a hub region of three nodes, an upload acknowledged to held by the other country (a seal and an upload every 1 s, called back)",
			ours: "p50 " + s + ", p99 " + r.span("BenchmarkEFGSHub", "p99-ms", 0, " ms")})
	}
	var b strings.Builder
	b.WriteString("| what | ours | reference | ratio | target |\n| --- | --- | --- | --- | --- |\n")
	for _, x := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", x.what, x.ours, x.ref, x.ratio, x.target)
	}
	return b.String()
}

// uploadRows are the CPU per acknowledged upload of a 3-node region against
// the sink's, and both sides' rates and latencies.
func (r results) uploadRows(bench, label string) []row {
	if len(r[bench]) == 0 {
		return nil
	}
	rate := func(side string) string {
		return r.span(bench, side+"uploads/s", 0, "/s") + ", p50 " + r.span(bench, side+"p50-ms", 1, " ms") +
			", p99 " + r.span(bench, side+"p99-ms", 1, " ms")
	}
	return []row{
		{what: "upload CPU, all 3 nodes, " + label,
			ours: r.span(bench, "region-cpu-us/upload", 0, " µs") + " (leader " + r.span(bench, "leader-cpu-us/upload", 0, " µs") +
				around("; kernel ", r.span(bench, "region-sys-cpu-us/upload", 0, " µs"), "") + ")",
			ref:   "sink " + r.span(bench, "sink-cpu-us/upload", 0, " µs") + around(" (kernel ", r.span(bench, "sink-sys-cpu-us/upload", 0, " µs"), ")"),
			ratio: r.span(bench, "cpu-ratio", 2, "×"), target: "≤ 1.5×"},
		{what: "uploads, " + label, ours: rate("region-"), ref: "sink " + rate("sink-"),
			ratio: r.quotient(bench, "region-uploads/s", "sink-uploads/s")},
	}
}

// downloadRows are a node's requests per second and CPU per request
// against nginx's for the same bytes.
func (r results) downloadRows(bench, label string) []row {
	if len(r[bench]) == 0 {
		return nil
	}
	side := func(who string) string {
		return r.span(bench, who+"-req/s", 0, "/s") + ", p50 " + r.span(bench, who+"-p50-ms", 2, " ms") +
			", p99 " + r.span(bench, who+"-p99-ms", 2, " ms")
	}
	return []row{
		{what: "download " + label + ", requests/s", ours: side("ours"), ref: "nginx " + side("nginx"),
			ratio: r.span(bench, "ratio", 2, "×"), target: "≥ 0.8×"},
		{what: "download " + label + ", CPU per request", ours: r.span(bench, "ours-cpu-us/req", 1, " µs"),
			ref: "nginx " + r.span(bench, "nginx-cpu-us/req", 1, " µs"), ratio: r.span(bench, "cpu-ratio", 2, "×"), target: "≤ 1.5×"},
	}
}

// quotient is the range over runs of num/den, each run on its own.
func (r results) quotient(bench, num, den string) string {
	q := results{}
	for _, m := range r[bench] {
		if m[den] != 0 {
			q[bench] = append(q[bench], map[string]float64{"q": m[num] / m[den]})
		}
	}
	return q.span(bench, "q", 2, "×")
}

// around returns s between before and after, or "" for a figure that
// did not run.
func around(before, s, after string) string {
	if s == "" {
		return ""
	}
	return before + s + after
}
