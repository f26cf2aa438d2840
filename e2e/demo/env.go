package demo

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// Env is what the demo and the e2e steps need from a running cluster.
type Env struct {
	// Kubeconfig is the admin kubeconfig file (for kubectl and the agent's
	// status command, run as a user would run them).
	Kubeconfig string
	// KubectlBin is the kubectl to run: the one built beside the control
	// plane (same version), or kubectl from PATH.
	KubectlBin string
	Kube       kubernetes.Interface
	// Dial connects from inside the cluster network (pod IPs, ClusterIPs,
	// cluster DNS names); it fits go-redis Options.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// KillPod SIGKILLs every process of a pod (no preStop); the kubelet
	// restarts the pod's containers per its restartPolicy.
	KillPod func(ctx context.Context, ns, pod string) error
	// Freeze stops every process of a pod with the cgroup freezer (a hung
	// node: no crash, no restart, just silence); Thaw resumes them.
	Freeze func(ctx context.Context, ns, pod string) error
	Thaw   func(ctx context.Context, ns, pod string) error
	// AgentBinary is the redis-ha-agent binary of this checkout, built for
	// this machine: its `status` command is what the demo shows.
	AgentBinary string
	// StateDir is the cluster's state dir: logs/ and the nodes' pod logs are
	// named in failure messages.
	StateDir string
	// RepoRoot is the checkout holding manifests/.
	RepoRoot string
}

// FromCluster builds an Env for an in-process cluster (tests).
func FromCluster(c *localkube.Cluster) (Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return Env{}, err
	}
	bin, err := buildAgentCLI(context.Background(), root, c.StateDir)
	if err != nil {
		return Env{}, err
	}
	return Env{
		Kubeconfig:  c.Kubeconfig,
		KubectlBin:  c.KubectlPath(),
		Kube:        c.Clientset,
		Dial:        c.DialContext,
		KillPod:     func(_ context.Context, ns, pod string) error { return c.KillPod(ns, pod) },
		Freeze:      func(_ context.Context, ns, pod string) error { return c.Freeze(ns, pod) },
		Thaw:        func(_ context.Context, ns, pod string) error { return c.Thaw(ns, pod) },
		AgentBinary: bin,
		StateDir:    c.StateDir,
		RepoRoot:    root,
	}, nil
}

const rootModule = "module github.com/redis-ha-agent/redis-ha-agent"

// RepoRoot finds the redis-ha-agent checkout above the working directory.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if strings.TrimSpace(first) == rootModule {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no redis-ha-agent checkout (go.mod starting with %q) above %s: run from inside the repository", rootModule, wd)
		}
	}
}

// logHint names where to look after a failure.
func (e Env) logHint(ns string) string {
	return fmt.Sprintf("component logs: %s; pod logs: %s",
		filepath.Join(e.StateDir, "logs"), filepath.Join(localkube.PodLogDirs(e.StateDir), ns+"_*"))
}
