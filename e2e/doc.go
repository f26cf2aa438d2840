// Package e2e holds the local Kubernetes cluster (control plane from upstream
// Go modules, a process-based node agent) and the end-to-end tests, faults and
// benchmarks that run the manifests under manifests/ on it.
//
// Layout:
//   - localkube/: the cluster — control plane processes in a network
//     namespace, pod network, PKI, faults, the daemon behind the CLI, and
//     RunTests for TestMain. localkube/README.md shows how to use it.
//   - kubelet/: the node agent that runs pods as host processes.
//   - cmd/localkube/: the CLI (`cd e2e && go run ./cmd/localkube up`).
//   - hack/: build-k8s.sh (control plane binaries, cached by version) and
//     install-deps.sh (Debian packages the cluster and tests run).
//   - testdata/: manifests from the seeds, applied unchanged.
package e2e
