// Package realnodes proves that the e2e cluster's nodes are what users run:
// the upstream kubelet on containerd and runc, running the images the
// manifests name (built by e2e/images), with resource limits enforced,
// `kubectl exec`/`logs` working, the termination semantics of a real
// kubelet (EndpointSlice terminating/serving during preStop), and its
// probes (redis-server outlives a frozen agent).
package realnodes
