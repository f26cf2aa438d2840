// Package e2e holds the local Kubernetes cluster (control plane and kubelets
// from upstream Go modules, containerd and runc from Debian, images built
// here) and the end-to-end tests, faults and benchmarks that run the
// manifests under manifests/ on it.
//
// Layout:
//   - localkube/: the cluster — control plane processes in a network
//     namespace, three nodes (a kubelet on its own containerd each), PKI,
//     faults, the daemon behind the CLI, and RunTests for TestMain.
//     localkube/README.md shows how to use it.
//   - images/: the images the nodes run, built without a registry.
//   - cmd/localkube/: the CLI (`cd e2e && go run ./cmd/localkube up`).
//   - hack/: build-k8s.sh (control plane and node binaries, cached by
//     version), build-promtool.sh (promtool for e2e/monitoring, cached
//     likewise) and install-deps.sh (Debian packages the cluster and tests
//     run).
//   - monitoring/: manifests/components/monitoring checked without a
//     cluster (promtool on the rules, prometheus-operator's types, the
//     dashboard's series); monitoring/promcheck is a module of its own.
//   - testdata/: manifests from the seeds, applied unchanged.
package e2e
