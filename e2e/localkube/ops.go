package localkube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The pod-level operations below take namespace and pod name, the way the
// CLI and tests think about pods, and act on the pod's sandbox on its node
// (pods.go, netfaults.go).

// Partition cuts the pod off from every other address (see partitionRules).
func (c *Cluster) Partition(ctx context.Context, ns, pod string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "Partition", ns, pod, ErrNeedsLocalNodes)
	}
	return c.setNetFault(ctx, ns, pod, "partition", partitionRules(), true)
}

// Heal undoes Partition.
func (c *Cluster) Heal(ctx context.Context, ns, pod string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "Heal", ns, pod, ErrNeedsLocalNodes)
	}
	return c.setNetFault(ctx, ns, pod, "partition", partitionRules(), false)
}

// CutAPI drops the pod's traffic to the API server.
func (c *Cluster) CutAPI(ctx context.Context, ns, pod string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "CutAPI", ns, pod, ErrNeedsLocalNodes)
	}
	return c.setNetFault(ctx, ns, pod, "cut-api", cutAPIRules(), true)
}

// RestoreAPI undoes CutAPI.
func (c *Cluster) RestoreAPI(ctx context.Context, ns, pod string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "RestoreAPI", ns, pod, ErrNeedsLocalNodes)
	}
	return c.setNetFault(ctx, ns, pod, "cut-api", cutAPIRules(), false)
}

// KillContainer SIGKILLs one container; the kubelet restarts it per
// restartPolicy.
func (c *Cluster) KillContainer(ns, pod, container string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "KillContainer", ns, pod, ErrNeedsLocalNodes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.killContainer(ctx, ns, pod, container)
}

// KillPod SIGKILLs every container of the pod and its sandbox at once,
// without preStop hooks.
func (c *Cluster) KillPod(ns, pod string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "KillPod", ns, pod, ErrNeedsLocalNodes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.killPod(ctx, ns, pod)
}

// Freeze stops every process of the pod with the cgroup freezer (a hung
// node: no crash, no restart, just silence); Thaw resumes them.
func (c *Cluster) Freeze(ns, pod string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "Freeze", ns, pod, ErrNeedsLocalNodes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.setFrozen(ctx, ns, pod, "FROZEN")
}

// FreezeContainer stops every process of one container of the pod with
// the cgroup freezer and leaves the pod's other containers running: a hung
// sidecar, say. thaw resumes them; it does nothing once the kubelet has
// replaced the container (its cgroup is gone).
func (c *Cluster) FreezeContainer(ns, pod, container string) (thaw func() error, err error) {
	if c.External() {
		return nil, fmt.Errorf("%s %s/%s: %w", "FreezeContainer", ns, pod, ErrNeedsLocalNodes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.freezeContainer(ctx, ns, pod, container)
}

// Thaw resumes a frozen pod.
func (c *Cluster) Thaw(ns, pod string) error {
	if c.External() {
		return fmt.Errorf("%s %s/%s: %w", "Thaw", ns, pod, ErrNeedsLocalNodes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.setFrozen(ctx, ns, pod, "THAWED")
}

// Exec runs cmd in a container of the pod, as `kubectl exec` does. An empty
// container means the pod's first container.
func (c *Cluster) Exec(ctx context.Context, ns, pod, container string, cmd []string, stdout, stderr io.Writer) error {
	if container == "" {
		p, err := c.Clientset.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("find pod %s/%s to pick its first container: %w", ns, pod, err)
		}
		container = p.Spec.Containers[0].Name
	}
	return c.execInPod(ctx, ns, pod, container, cmd, stdout, stderr)
}

// DeletePod deletes the pod through the API, gracefully (preStop and the
// pod's grace period apply).
func (c *Cluster) DeletePod(ctx context.Context, ns, pod string) error {
	if err := c.Clientset.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete pod %s/%s: %w", ns, pod, err)
	}
	return nil
}

// DeleteAllPods deletes every pod of the StatefulSet at once (a full restart).
func (c *Cluster) DeleteAllPods(ctx context.Context, ns, sts string) error {
	s, err := c.Clientset.AppsV1().StatefulSets(ns).Get(ctx, sts, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("find StatefulSet %s/%s: %w", ns, sts, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil {
		return fmt.Errorf("StatefulSet %s/%s selector: %w", ns, sts, err)
	}
	if err := c.Clientset.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel.String()}); err != nil {
		return fmt.Errorf("delete pods of StatefulSet %s/%s: %w", ns, sts, err)
	}
	return nil
}

// Apply applies a file or a kustomize directory with kubectl (server-side
// apply), exactly as a user would.
func (c *Cluster) Apply(ctx context.Context, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("apply %s: %w", path, err)
	}
	flag := "-f"
	if fi.IsDir() {
		flag = "-k"
	}
	return c.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "--force-conflicts", flag, path)
}

// KubectlPath is the kubectl built with the control plane (same version),
// or kubectl on PATH when the bin dir has none.
func (c *Cluster) KubectlPath() string {
	p := filepath.Join(c.binDir, "kubectl")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "kubectl"
}

// Kubectl runs kubectl with the cluster's kubeconfig.
func (c *Cluster) Kubectl(ctx context.Context, stdout, stderr io.Writer, args ...string) error {
	var errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, c.KubectlPath(), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdout = stdout
	cmd.Stderr = &errBuf
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(&errBuf, stderr)
	}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errBuf.String()))
		}
		return fmt.Errorf("kubectl %s: %w (is kubectl on PATH?)", strings.Join(args, " "), err)
	}
	return nil
}

// ContainerLog returns what a container of the pod wrote, as `kubectl logs`
// shows it, after what its previous run wrote if it restarted: a test
// looking for a line must not miss it because the container restarted.
func (c *Cluster) ContainerLog(ctx context.Context, ns, pod, container string) (string, error) {
	prev, _ := c.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: true}).DoRaw(ctx)
	b, err := c.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("logs of %s/%s container %s: %w", ns, pod, container, err)
	}
	if len(prev) > 0 && !strings.HasPrefix(string(prev), "{\"kind\":\"Status\"") {
		return string(prev) + string(b), nil
	}
	return string(b), nil
}

// SavePodLogs writes the whole log of every container of every pod in ns
// (the previous instance's first, as ContainerLog returns it) into
// dir/<pod>_<container>.log, and each pod's phase, conditions, labels and
// container restarts into dir/pods.txt, so a failed scenario can be read
// after its namespace is gone. It returns what it could not save.
func (c *Cluster) SavePodLogs(ctx context.Context, ns, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	l, err := c.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("pods of %s: %w", ns, err)
	}
	var summary strings.Builder
	var errs []error
	for _, p := range l.Items {
		var conds []string
		for _, cd := range p.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s", cd.Type, cd.Status))
		}
		fmt.Fprintf(&summary, "%s on %s: %s %s labels=%v\n", p.Name, p.Spec.NodeName, p.Status.Phase, strings.Join(conds, ","), p.Labels)
		for _, st := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			fmt.Fprintf(&summary, "  %s ready=%t restarts=%d\n", st.Name, st.Ready, st.RestartCount)
		}
		var names []string
		for _, ct := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			names = append(names, ct.Name)
		}
		for _, n := range names {
			out, err := c.ContainerLog(ctx, ns, p.Name, n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, p.Name+"_"+n+".log"), []byte(out), 0o644); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "pods.txt"), []byte(summary.String()), 0o644); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
