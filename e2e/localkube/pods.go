package localkube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// Every fault goes through the mechanism a node operator would use:
// containerd for kills (the kubelet notices and restarts with its own
// backoff), the cgroup freezer for freezes, and iptables inside the pod
// sandbox's network namespace for partitions (netfaults.go).

// podRef is a pod, its node and its sandbox on that node.
type podRef struct {
	pod     *corev1.Pod
	node    *node
	sandbox string // CRI pod sandbox id of the running sandbox
	pid     int    // the sandbox's (pause) process
}

func (c *Cluster) nodeNamed(name string) (*node, error) {
	for _, n := range c.nodes {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("node %q is not one of this cluster's nodes %v", name, c.opts.Nodes)
}

func (c *Cluster) findPod(ctx context.Context, ns, name string) (podRef, error) {
	p, err := c.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return podRef{}, fmt.Errorf("find pod %s/%s: %w", ns, name, err)
	}
	if p.Spec.NodeName == "" {
		return podRef{}, fmt.Errorf("pod %s/%s is not scheduled to a node yet", ns, name)
	}
	n, err := c.nodeNamed(p.Spec.NodeName)
	if err != nil {
		return podRef{}, err
	}
	out, err := c.crictl(ctx, n, "pods", "--namespace", ns, "--name", "^"+name+"$", "--state", "ready", "-q")
	if err != nil {
		return podRef{}, err
	}
	// crictl filters --name as a regexp; match the pod's UID too, so a pod
	// being replaced by a namesake is never the target.
	for _, id := range strings.Fields(out) {
		pid, uid, err := c.sandboxInfo(ctx, n, id)
		if err != nil {
			return podRef{}, err
		}
		if uid == string(p.UID) {
			return podRef{pod: p, node: n, sandbox: id, pid: pid}, nil
		}
	}
	return podRef{}, fmt.Errorf("pod %s/%s (uid %s) has no ready sandbox on node %s", ns, name, p.UID, n.name)
}

func (c *Cluster) sandboxInfo(ctx context.Context, n *node, id string) (pid int, uid string, err error) {
	out, err := c.crictl(ctx, n, "inspectp", "--output", "json", id)
	if err != nil {
		return 0, "", err
	}
	var v struct {
		Status struct {
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
		} `json:"status"`
		Info struct {
			PID int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return 0, "", fmt.Errorf("node %s: parse crictl inspectp %s: %w", n.name, id, err)
	}
	if v.Info.PID == 0 {
		return 0, "", fmt.Errorf("node %s: sandbox %s has no process", n.name, id)
	}
	return v.Info.PID, v.Status.Metadata.UID, nil
}

// containerIDs returns the runtime ids of the pod's running containers by
// name (init and sidecar containers included).
func containerIDs(p *corev1.Pod) map[string]string {
	ids := map[string]string{}
	add := func(ss []corev1.ContainerStatus) {
		for _, s := range ss {
			if s.State.Running != nil && s.ContainerID != "" {
				_, id, _ := strings.Cut(s.ContainerID, "://")
				ids[s.Name] = id
			}
		}
	}
	add(p.Status.InitContainerStatuses)
	add(p.Status.ContainerStatuses)
	return ids
}

func (c *Cluster) killContainer(ctx context.Context, ns, pod, container string) error {
	r, err := c.findPod(ctx, ns, pod)
	if err != nil {
		return err
	}
	ids := containerIDs(r.pod)
	if container == "" {
		container = r.pod.Spec.Containers[0].Name
	}
	id, ok := ids[container]
	if !ok {
		return fmt.Errorf("pod %s/%s has no running container %q (running: %v)", ns, pod, container, slices.Sorted(maps.Keys(ids)))
	}
	if _, err := c.ctr(ctx, r.node, "-n", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
		return fmt.Errorf("kill container %s of %s/%s: %w", container, ns, pod, err)
	}
	return nil
}

// killPod SIGKILLs every container of the pod and its sandbox at once,
// as if the processes died with no warning (no preStop).
func (c *Cluster) killPod(ctx context.Context, ns, pod string) error {
	r, err := c.findPod(ctx, ns, pod)
	if err != nil {
		return err
	}
	var errs []error
	for name, id := range containerIDs(r.pod) {
		if _, err := c.ctr(ctx, r.node, "-n", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
			errs = append(errs, fmt.Errorf("kill %s: %w", name, err))
		}
	}
	if _, err := c.ctr(ctx, r.node, "-n", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", r.sandbox); err != nil {
		errs = append(errs, fmt.Errorf("kill sandbox: %w", err))
	}
	return errors.Join(errs...)
}

// podFreezer is the pod's cgroup in the freezer hierarchy: the parent of
// its sandbox's cgroup, so freezing it stops every container of the pod.
func podFreezer(sandboxPID int) (string, error) {
	dir, err := freezerCgroup(sandboxPID)
	if err != nil {
		return "", err
	}
	return filepath.Dir(dir), nil
}

// freezerCgroup is the directory of a process's cgroup in the freezer
// hierarchy: for a container's main process, the container's own cgroup.
func freezerCgroup(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && parts[1] == "freezer" {
			return filepath.Join("/sys/fs/cgroup/freezer", parts[2]), nil
		}
	}
	return "", fmt.Errorf("process %d has no freezer cgroup (cgroup v1 freezer not mounted?)", pid)
}

// freezeContainer freezes one container's cgroup and returns what thaws
// it. The thaw is bound to that cgroup, not to the container's name: once
// the kubelet has replaced the container, the cgroup is gone and there is
// nothing left to thaw.
func (c *Cluster) freezeContainer(ctx context.Context, ns, pod, container string) (func() error, error) {
	pid, err := c.ContainerPID(ctx, ns, pod, container)
	if err != nil {
		return nil, err
	}
	dir, err := freezerCgroup(pid)
	if err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "freezer.state")
	if err := os.WriteFile(state, []byte("FROZEN"), 0o644); err != nil {
		return nil, fmt.Errorf("freeze container %s of %s/%s (%s): %w", container, ns, pod, dir, err)
	}
	return func() error {
		err := os.WriteFile(state, []byte("THAWED"), 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("thaw container %s of %s/%s (%s): %w", container, ns, pod, dir, err)
		}
		return nil
	}, nil
}

func (c *Cluster) setFrozen(ctx context.Context, ns, pod string, state string) error {
	r, err := c.findPod(ctx, ns, pod)
	if err != nil {
		return err
	}
	dir, err := podFreezer(r.pid)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "freezer.state"), []byte(state), 0o644); err != nil {
		return fmt.Errorf("%s pod %s/%s (%s): %w", strings.ToLower(state), ns, pod, dir, err)
	}
	return nil
}

// execInPod runs cmd in a container the way kubectl exec does: through the
// API server, the kubelet and containerd's streaming server.
func (c *Cluster) execInPod(ctx context.Context, ns, pod, container string, cmd []string, stdout, stderr io.Writer) error {
	req := c.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: stdout != nil, Stderr: stderr != nil}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(c.RESTConfig, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("exec in %s/%s: %w", ns, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(c.RESTConfig, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("exec in %s/%s: %w", ns, pod, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool { return true })
	if err != nil {
		return err
	}
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr}); err != nil {
		return fmt.Errorf("exec %v in %s/%s (%s): %w", cmd, ns, pod, container, err)
	}
	return nil
}

// ContainerPID returns the host PID of a running container's main process,
// for checks a test makes from outside the container:
// which binary runs, which cgroup limits apply.
func (c *Cluster) ContainerPID(ctx context.Context, ns, pod, container string) (int, error) {
	if c.External() {
		return 0, fmt.Errorf("find the process of %s/%s container %s: %w", ns, pod, container, ErrNeedsLocalNodes)
	}
	r, err := c.findPod(ctx, ns, pod)
	if err != nil {
		return 0, err
	}
	id, ok := containerIDs(r.pod)[container]
	if !ok {
		return 0, fmt.Errorf("pod %s/%s has no running container %q", ns, pod, container)
	}
	out, err := c.crictl(ctx, r.node, "inspect", "--output", "json", id)
	if err != nil {
		return 0, err
	}
	var v struct {
		Info struct {
			PID int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Info.PID == 0 {
		return 0, fmt.Errorf("crictl inspect %s on node %s: no pid (%v)", id, r.node.name, err)
	}
	return v.Info.PID, nil
}
