// Package localkube runs a real Kubernetes cluster on one machine for the
// end-to-end tests, benchmarks and the demo: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, CoreDNS and kube-proxy, and three
// nodes of an upstream kubelet each on its own containerd and runc, built
// from their upstream modules (etcd, containerd and runc from Debian), all
// inside a network namespace the run creates, so nothing listens on or
// routes through the host network.
//
// It owns the cluster network (a bridge in the "cluster" netns, which every
// node's CNI bridge plugin attaches pods to), the nodes' configuration, the
// images they run (built by package images and imported into every node),
// the PKI and kubeconfigs, the TCP forwarder that makes the API server
// reachable from the host on 127.0.0.1, dialers and a DNS resolver that work
// from inside the cluster network, the faults (kills through containerd, the
// cgroup freezer, iptables in a pod's sandbox, API-server and node
// stop/start), and the daemon that keeps a cluster running for the CLI.
//
// Every object a run creates (network namespaces, cgroups, the run record)
// is named after its run id, so the next Up can find and remove what a
// crashed run left.
package localkube
