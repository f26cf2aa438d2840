package demo

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// clusterNetwork dials from inside a localkube run's cluster network
// namespace (lk-<run>-cluster, see e2e/localkube/README.md). The demo needs
// it because the cluster lives in the background daemon, not in this
// process, when --keep must leave it running.
type clusterNetwork struct {
	path     string
	resolver *net.Resolver
}

func newClusterNetwork(runID, dnsIP string) *clusterNetwork {
	n := &clusterNetwork{path: filepath.Join("/run/netns", "lk-"+runID+"-cluster")}
	n.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return n.dialIP(ctx, network, net.JoinHostPort(dnsIP, "53"))
	}}
	return n
}

// Dial accepts IP literals and cluster DNS names (resolved through CoreDNS).
func (n *clusterNetwork) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %q in the cluster network: %w", addr, err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return n.dialIP(ctx, network, addr)
	}
	ips, err := n.resolver.LookupHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %q with the cluster DNS: %w", host, err)
	}
	var last error
	for _, ip := range ips {
		c, err := n.dialIP(ctx, network, net.JoinHostPort(ip, port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// dialIP creates the socket on a thread switched into the namespace; the
// socket keeps that namespace after the thread switches back. If switching
// back fails the thread stays locked, and Go discards it when the goroutine
// ends, so no other goroutine runs in the wrong namespace.
func (n *clusterNetwork) dialIP(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: fmt.Errorf("current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(n.path)
		if err != nil {
			ch <- result{err: fmt.Errorf("open network namespace %s (is the cluster running?): %w", n.path, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{err: fmt.Errorf("enter network namespace %s: %w", n.path, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if serr := netns.Set(orig); serr != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{err: fmt.Errorf("return from network namespace %s: %w", n.path, serr)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
