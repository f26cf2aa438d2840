// Package faults runs the fault matrix and the benchmarks of issue #8 on the
// local cluster (e2e/localkube): for each mode, each fault and each workload
// it deploys the manifests under manifests/ unchanged, writes through the
// clients an application would use, injects the fault, heals it, reads every
// key back and judges the history with e2e/workload.
//
// Knobs (environment, independent of -short):
//   - FAULTS=quick (default) runs a representative subset, FAULTS=all the
//     whole matrix, FAULTS=none none (the benchmarks alone).
//   - BENCH=1 runs the TestBench* benchmarks, each beside its baseline
//     (the seeds' own setups, e2e/testdata/baseline-*) in the same run.
//   - FAULTS_REPORT_DIR, when set, receives the result tables (Markdown) and
//     the timeline PNGs; e2e/report holds a committed run.
//
// The package is test-only apart from this file: everything runs under
// TestMain with localkube.RunTests.
package faults
