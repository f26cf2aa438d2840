package localkube

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/kubelet"
)

// Network is the cluster network: a bridge in the cluster netns and one
// netns plus veth per pod. The node agent calls SetupPod/TeardownPod; the
// fault methods act on the pod's own netns so they cut exactly that pod.
type Network struct {
	runID   string
	cluster namespace

	mu     sync.Mutex
	next   uint32 // offset of the next pod IP in clusterCIDR; never reused
	pods   map[string]*podEntry
	closed bool
}

type podEntry struct {
	uid, name   string
	ns          namespace
	ip          string
	veth        string
	partitioned bool
	apiCut      bool
}

// podNet is what the node agent needs to run a pod's processes.
type podNet struct {
	NetNSPath string
	IP        string
	DNSServer string
	Gateway   string
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
	n := &Network{runID: runID, cluster: ns, next: 2, pods: map[string]*podEntry{}}
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

// setupPod creates the pod's netns, a veth into the bridge and the next
// unused IP. A recreated pod (new UID) always gets a new address, which is
// exactly the IP churn the agent has to survive.
func (n *Network) setupPod(ctx context.Context, podUID, podName string) (podNet, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return podNet{}, errors.New("cluster network is shut down")
	}
	if p, ok := n.pods[podUID]; ok {
		n.mu.Unlock()
		return p.net(), nil
	}
	seq := n.next
	n.next++
	// Skip addresses ending in .0 and .255 so no tool mistakes them for
	// network or broadcast addresses.
	for seq%256 == 0 || seq%256 == 255 {
		seq = n.next
		n.next++
	}
	n.mu.Unlock()
	if seq >= 1<<16-1 {
		return podNet{}, fmt.Errorf("pod network %s exhausted after %d pods", clusterCIDR, seq)
	}
	base := netip.MustParseAddr("10.244.0.0").As4()
	ip := netip.AddrFrom4([4]byte{base[0], base[1], byte(seq >> 8), byte(seq)}).String()
	id := strconv.FormatUint(uint64(seq), 10)
	p := &podEntry{uid: podUID, name: podName, ip: ip, veth: "vp" + id}
	ns, err := createNamespace(ctx, "lk-"+n.runID+"-p"+id)
	if err != nil {
		return podNet{}, fmt.Errorf("pod %s: %w", podName, err)
	}
	p.ns = ns
	if err := n.plumb(ctx, p); err != nil {
		_ = ns.delete(context.WithoutCancel(ctx))
		return podNet{}, fmt.Errorf("pod %s: %w", podName, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		_ = ns.delete(context.WithoutCancel(ctx))
		return podNet{}, errors.New("cluster network is shut down")
	}
	n.pods[podUID] = p
	return p.net(), nil
}

func (n *Network) plumb(ctx context.Context, p *podEntry) error {
	c := n.cluster
	steps := []struct {
		ns   namespace
		args []string
	}{
		{c, []string{"ip", "link", "add", p.veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns.name}},
		{c, []string{"ip", "link", "set", p.veth, "master", bridgeName, "up"}},
		// Hairpin lets a pod reach itself through its own ClusterIP.
		{c, []string{"ip", "link", "set", p.veth, "type", "bridge_slave", "hairpin", "on"}},
		{p.ns, []string{"ip", "addr", "add", p.ip + "/16", "dev", "eth0"}},
		{p.ns, []string{"ip", "link", "set", "eth0", "up"}},
		{p.ns, []string{"ip", "route", "add", "default", "via", gatewayIP}},
	}
	for _, s := range steps {
		if err := s.ns.run(ctx, s.args[0], s.args[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func (p *podEntry) net() podNet {
	return podNet{NetNSPath: p.ns.path(), IP: p.ip, DNSServer: dnsServiceIP, Gateway: gatewayIP}
}

// teardownPod deletes the pod's netns (and with it the veth pair). Unknown
// pods are fine: teardown must be idempotent for the node agent's retries.
func (n *Network) teardownPod(podUID string) error {
	n.mu.Lock()
	p, ok := n.pods[podUID]
	delete(n.pods, podUID)
	n.mu.Unlock()
	if !ok {
		return nil
	}
	if err := p.ns.delete(context.Background()); err != nil {
		return fmt.Errorf("pod %s: %w", p.name, err)
	}
	return nil
}

// close removes every pod netns and then the cluster netns.
func (n *Network) close(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	pods := n.pods
	n.pods = map[string]*podEntry{}
	n.mu.Unlock()
	var errs []error
	for _, p := range pods {
		if err := p.ns.delete(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.cluster.delete(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (n *Network) lookup(podUID string) (*podEntry, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.pods[podUID]
	if !ok {
		return nil, fmt.Errorf("no pod network for pod UID %s: the pod is not running on this cluster (check `localkube status`)", podUID)
	}
	return p, nil
}

var _ kubelet.PodNetwork = (*Network)(nil)

// SetupPod implements kubelet.PodNetwork.
func (n *Network) SetupPod(ctx context.Context, podUID, podName string) (kubelet.PodNet, error) {
	p, err := n.setupPod(ctx, podUID, podName)
	return kubelet.PodNet(p), err
}

// TeardownPod implements kubelet.PodNetwork.
func (n *Network) TeardownPod(podUID string) error { return n.teardownPod(podUID) }

// uidByName finds a running pod's UID by pod name without the API, for
// faults applied while the API server is down. Ambiguous names fail.
func (n *Network) uidByName(name string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var uid string
	for u, p := range n.pods {
		if p.name == name {
			if uid != "" {
				return "", false
			}
			uid = u
		}
	}
	return uid, uid != ""
}

// PodFault is a network fault in effect on one pod.
type PodFault struct {
	Pod   string `json:"pod"`
	IP    string `json:"ip"`
	Fault string `json:"fault"` // partition or cut-api
}

// Faults lists the network faults in effect, for status output.
func (n *Network) Faults() []PodFault {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []PodFault
	for _, p := range n.pods {
		if p.partitioned {
			out = append(out, PodFault{Pod: p.name, IP: p.ip, Fault: "partition"})
		}
		if p.apiCut {
			out = append(out, PodFault{Pod: p.name, IP: p.ip, Fault: "cut-api"})
		}
	}
	return out
}
