package localkube

import "fmt"

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

// PodFault is a network fault in effect on one pod.
type PodFault struct {
	Pod   string `json:"pod"` // <namespace>/<name>
	IP    string `json:"ip"`
	Fault string `json:"fault"` // partition or cut-api
}
