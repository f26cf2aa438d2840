package localkube

import (
	"context"
	"fmt"
)

// The network faults are iptables rules inside the pod's own netns, so they
// hit exactly one pod, need no knowledge of other pods, and vanish with the
// pod. Every rule carries a comment so `iptables -S` in the pod shows why.

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

// Partition drops all traffic between the pod and every other address; the
// pod's loopback keeps working so its own containers still see each other.
func (n *Network) Partition(podUID string) error {
	return n.setFault(podUID, "partition", func(p *podEntry) *bool { return &p.partitioned }, partitionRules(), true)
}

// Heal undoes Partition.
func (n *Network) Heal(podUID string) error {
	return n.setFault(podUID, "heal", func(p *podEntry) *bool { return &p.partitioned }, partitionRules(), false)
}

// CutAPI drops only the pod's traffic to the API server.
func (n *Network) CutAPI(podUID string) error {
	return n.setFault(podUID, "cut-api", func(p *podEntry) *bool { return &p.apiCut }, cutAPIRules(), true)
}

// RestoreAPI undoes CutAPI.
func (n *Network) RestoreAPI(podUID string) error {
	return n.setFault(podUID, "restore-api", func(p *podEntry) *bool { return &p.apiCut }, cutAPIRules(), false)
}

// setFault inserts or deletes a rule set once; repeating a fault or healing a
// healthy pod is a no-op, so tests can call Heal in cleanup unconditionally.
func (n *Network) setFault(podUID, what string, flag func(*podEntry) *bool, rules [][]string, on bool) error {
	p, err := n.lookup(podUID)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	f := flag(p)
	if *f == on {
		return nil
	}
	op := "-I"
	if !on {
		op = "-D"
	}
	for _, r := range rules {
		args := append([]string{"-w", op}, r...)
		if err := p.ns.run(context.Background(), "iptables", args...); err != nil {
			return fmt.Errorf("%s pod %s (%s): %w", what, p.name, p.ip, err)
		}
	}
	*f = on
	return nil
}
