// Package localkube runs a real Kubernetes control plane on one machine for
// the end-to-end tests, benchmarks and the demo: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, CoreDNS and kube-proxy built from
// their upstream modules, all inside a network namespace the run creates, so
// nothing listens on or routes through the host network.
//
// It owns the cluster network (a bridge in the "cluster" netns, one netns and
// veth per pod, sequential never-reused pod IPs), the PKI and kubeconfigs, the
// TCP forwarder that makes the API server reachable from the host on
// 127.0.0.1, dialers and a DNS resolver that work from inside the cluster
// network, the network faults (partition, cut-api) and API-server stop/start,
// and the daemon that keeps a cluster running for the CLI. The node agent that
// plays kubelet lives in package kubelet; Up starts it once the control plane
// is ready.
//
// Every object a run creates (network namespaces, the run record) is named
// lk-<run id>, so the next Up can find and remove what a crashed run left.
package localkube
