package localkube

import (
	"context"
	"fmt"
)

// Network is the cluster network namespace: the control plane and the
// nodes' kubelets and containerds run in it, and the bridge in it is where
// every node's CNI plugin attaches pods (pod network namespaces are the
// CNI's, made by containerd).
type Network struct {
	cluster namespace
}

// createClusterNetwork builds the cluster netns: the bridge that every pod
// veth joins, the gateway address the control plane listens on, forwarding
// for pod-to-ClusterIP traffic, and bridge netfilter so kube-proxy's DNAT is
// undone on replies that stay on the bridge.
func createClusterNetwork(ctx context.Context, runID string) (*Network, error) {
	ns, err := createNamespace(ctx, "lk-"+runID+"-cluster")
	if err != nil {
		return nil, err
	}
	n := &Network{cluster: ns}
	steps := [][]string{
		{"ip", "link", "add", bridgeName, "type", "bridge"},
		{"ip", "addr", "add", gatewayIP + "/16", "dev", bridgeName},
		{"ip", "link", "set", bridgeName, "up"},
		// Locally originated connections to ClusterIPs (test clients, CoreDNS
		// checks) need a route before kube-proxy's OUTPUT DNAT rewrites them.
		{"ip", "route", "add", serviceCIDR, "dev", bridgeName, "src", gatewayIP},
		{"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		{"sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"},
	}
	for _, s := range steps {
		if err := ns.run(ctx, s[0], s[1:]...); err != nil {
			return n, fmt.Errorf("set up cluster network namespace %s: %w", ns.name, err)
		}
	}
	return n, nil
}

// close removes the cluster netns.
func (n *Network) close(ctx context.Context) error {
	return n.cluster.delete(ctx)
}
