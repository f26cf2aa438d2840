package localkube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// DialContext opens a connection from inside the cluster network, the way a
// client pod would: pod IPs, ClusterIPs (through kube-proxy's OUTPUT rules in
// the cluster netns) and cluster DNS names all work. Its signature fits
// go-redis's Options.Dialer and http.Transport.DialContext. On an
// E2E_KUBECONFIG cluster it goes through a port-forward to the pod.
func (c *Cluster) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.External() {
		return c.ext.dial(ctx, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %q in cluster network: %w", addr, err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return c.Network.cluster.dial(ctx, network, addr)
	}
	ips, err := c.Resolver.LookupHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %q with cluster DNS: %w", host, err)
	}
	var errs []error
	for _, ip := range ips {
		conn, err := c.Network.cluster.dial(ctx, network, net.JoinHostPort(ip, port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// newResolver asks CoreDNS directly on the gateway address, so name lookups
// from tests keep working even while kube-proxy rules are being rewritten.
func (c *Cluster) newResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return c.Network.cluster.dial(ctx, network, net.JoinHostPort(gatewayIP, "53"))
	}}
}
