package localkube

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The network faults are iptables rules inside the pod sandbox's netns, so
// they hit exactly one pod, need no knowledge of other pods, and vanish with
// the sandbox. Every rule carries a comment so `iptables -S` in the pod
// shows why.

// partitionRules drop all traffic between the pod and every other address;
// the pod's loopback keeps working so its own containers still see each
// other.
func partitionRules() [][]string {
	return [][]string{
		{"INPUT", "!", "-i", "lo", "-m", "comment", "--comment", "localkube-partition", "-j", "DROP"},
		{"OUTPUT", "!", "-o", "lo", "-m", "comment", "--comment", "localkube-partition", "-j", "DROP"},
	}
}

// cutAPIRules drop the two ways a pod can reach the API server: the
// kubernetes Service and the advertised endpoint behind it.
func cutAPIRules() [][]string {
	return [][]string{
		{"OUTPUT", "-d", kubernetesSvc, "-p", "tcp", "--dport", "443", "-m", "comment", "--comment", "localkube-cut-api", "-j", "DROP"},
		{"OUTPUT", "-d", gatewayIP, "-p", "tcp", "--dport", fmt.Sprint(apiServerPort), "-m", "comment", "--comment", "localkube-cut-api", "-j", "DROP"},
	}
}

// setNetFault inserts (on) or deletes the rules of a fault in the pod
// sandbox's network namespace; `iptables -C` makes both idempotent. The
// sandbox of a fault in effect is remembered, so that status can list it
// and it can be undone while the API server is down.
func (c *Cluster) setNetFault(ctx context.Context, ns, pod, fault string, rules [][]string, on bool) error {
	key := ns + "/" + pod + " " + fault
	r, err := c.findPod(ctx, ns, pod)
	pid, ip := r.pid, ""
	if err == nil {
		ip = r.pod.Status.PodIP
	} else {
		c.mu.Lock()
		f, ok := c.netFaults[key]
		c.mu.Unlock()
		if on || !ok || !f.sandboxAlive() {
			return err
		}
		pid, ip = f.pid, f.IP
	}
	netns := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	for _, rule := range rules {
		_, checkErr := output(ctx, "nsenter", append([]string{"--net=" + netns, "--", "iptables", "-w", "-C"}, rule...)...)
		present := checkErr == nil
		if present == on {
			continue
		}
		op := "-I"
		if !on {
			op = "-D"
		}
		if _, err := output(ctx, "nsenter", append([]string{"--net=" + netns, "--", "iptables", "-w", op}, rule...)...); err != nil {
			return fmt.Errorf("%s pod %s/%s (%s): %w", fault, ns, pod, ip, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !on {
		delete(c.netFaults, key)
		return nil
	}
	link, err := os.Readlink(netns)
	if err != nil {
		return fmt.Errorf("%s pod %s/%s: the sandbox (pid %d) is gone: %w", fault, ns, pod, pid, err)
	}
	if c.netFaults == nil {
		c.netFaults = map[string]netFault{}
	}
	c.netFaults[key] = netFault{PodFault: PodFault{Pod: ns + "/" + pod, IP: ip, Fault: fault}, pid: pid, netns: link}
	return nil
}

// netFault is a network fault set on one pod sandbox.
type netFault struct {
	PodFault
	pid   int    // the sandbox's process
	netns string // its network namespace then, as /proc/<pid>/ns/net reads
}

// sandboxAlive tells whether the fault's sandbox still runs: its process
// is in the same network namespace (a recreated pod has another sandbox,
// and a reused pid another namespace).
func (f netFault) sandboxAlive() bool {
	l, err := os.Readlink("/proc/" + strconv.Itoa(f.pid) + "/ns/net")
	return err == nil && l == f.netns
}

// NetworkFaults lists the network faults in effect, for status output.
// A fault goes with its pod's sandbox.
func (c *Cluster) NetworkFaults() []PodFault {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []PodFault
	for key, f := range c.netFaults {
		if !f.sandboxAlive() {
			delete(c.netFaults, key)
			continue
		}
		out = append(out, f.PodFault)
	}
	slices.SortFunc(out, func(a, b PodFault) int { return strings.Compare(a.Pod+" "+a.Fault, b.Pod+" "+b.Fault) })
	return out
}

// PodFault is a network fault in effect on one pod.
type PodFault struct {
	Pod   string `json:"pod"` // <namespace>/<name>
	IP    string `json:"ip"`
	Fault string `json:"fault"` // partition or cut-api
}
