package main

import (
	"strings"
	"testing"
)

// A log as `go test -bench -v` prints it: RUN lines, logs, two runs of one
// upload case, a download case and failover; the rest did not run.
const benchLog = `=== RUN   BenchmarkUploadCPU
BenchmarkUploadCPU/clients=64/spread-2         	       1	3004725343 ns/op	         2.275 cpu-ratio	       250.0 region-sys-cpu-us/upload	       80.0 sink-sys-cpu-us/upload	       238.3 leader-cpu-us/upload	       633.3 region-cpu-us/upload	        24.40 region-p50-ms	        54.22 region-p99-ms	      2454 region-uploads/s	       278.3 sink-cpu-us/upload	        10.76 sink-p50-ms	        59.65 sink-p99-ms	      4923 sink-uploads/s
    cpu_bench_test.go:40: some log line with 3 words
BenchmarkUploadCPU/clients=64/spread-2         	       1	3104725343 ns/op	         2.100 cpu-ratio	       230.0 leader-cpu-us/upload	       600.0 region-cpu-us/upload	        22.00 region-p50-ms	        50.00 region-p99-ms	      2500 region-uploads/s	       285.7 sink-cpu-us/upload	        10.00 sink-p50-ms	        60.00 sink-p99-ms	      5000 sink-uploads/s
BenchmarkDownloadVsNginx/file/pinned-2 	1	10 ns/op	0.86 ratio	42000 ours-req/s	50000 nginx-req/s	1.1 ours-p50-ms	0.9 nginx-p50-ms	3.2 ours-p99-ms	2.0 nginx-p99-ms	28 ours-cpu-us/req	23.7 nginx-cpu-us/req	1.18 cpu-ratio
BenchmarkFailover-2 	1	1 ns/op	1800 median-ms	2800 worst-ms
BenchmarkBroken-2 	1	x ns/op
PASS
ok  	github.com/covid-backend/covid-backend/cluster-test	43.196s
`

func TestSummary(t *testing.T) {
	runs, err := parse(strings.NewReader(benchLog))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(runs["BenchmarkUploadCPU/clients=64/spread"]); n != 2 {
		t.Fatalf("upload runs parsed: %d, want 2", n)
	}
	if _, ok := runs["BenchmarkBroken"]; ok {
		t.Fatal("a line with a value that is not a number was kept")
	}
	out := render(runs)
	for _, want := range []string{
		"| upload CPU, all 3 nodes, 64/spread | 600–633 µs (leader 230–238 µs; kernel 250 µs) | sink 278–286 µs (kernel 80 µs) | 2.10–2.27× | ≤ 1.5× |",
		"| uploads, 64/spread | 2454–2500/s, p50 22.0–24.4 ms, p99 50.0–54.2 ms | sink 4923–5000/s, p50 10.0–10.8 ms, p99 59.6–60.0 ms | 0.50× |",
		"| download file/pinned, requests/s | 42000/s, p50 1.10 ms, p99 3.20 ms | nginx 50000/s, p50 0.90 ms, p99 2.00 ms | 0.86× | ≥ 0.8× |",
		"| download file/pinned, CPU per request | 28.0 µs | nginx 23.7 µs | 1.18× | ≤ 1.5× |",
		"| leader failover, kill -9 to the next acknowledged upload (10 kills) | median 1800 ms, worst 2800 ms |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks\n%s\nin\n%s", want, out)
		}
	}
	for _, absent := range []string{"16/spread", "index/", "federation"} {
		if strings.Contains(out, absent) {
			t.Errorf("summary has a row for %q, which did not run:\n%s", absent, out)
		}
	}
}

func TestTrimProcs(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkX-2":            "BenchmarkX",
		"BenchmarkX/a=1/leader-8": "BenchmarkX/a=1/leader",
		"BenchmarkX/file-shared":  "BenchmarkX/file-shared",
		"BenchmarkX":              "BenchmarkX",
	} {
		if got := trimProcs(in); got != want {
			t.Errorf("trimProcs(%q) = %q, want %q", in, got, want)
		}
	}
}
