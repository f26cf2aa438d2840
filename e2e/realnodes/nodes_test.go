package realnodes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

func newNamespace(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := prefix + "-" + hex.EncodeToString(b)
	cs := cluster.Clientset
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	// Runs before the delete: a failed test shows what each container said.
	t.Cleanup(func() {
		if t.Failed() {
			dumpPodLogs(t, ns)
		}
	})
	// Pods need the namespace's default ServiceAccount.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount after a minute", ns)
	}
	return ns
}

// dumpPodLogs logs the last lines of every container of every pod in ns,
// with the pod's phase and conditions, so a failure on the real nodes can be
// read after the cluster is gone.
func dumpPodLogs(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("pods of %s: %v", ns, err)
		return
	}
	for _, p := range l.Items {
		var conds []string
		for _, c := range p.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
		}
		t.Logf("pod %s/%s on %s: %s %s labels=%v", ns, p.Name, p.Spec.NodeName, p.Status.Phase, strings.Join(conds, ","), p.Labels)
		var names []string
		for _, c := range p.Spec.InitContainers {
			names = append(names, c.Name)
		}
		for _, c := range p.Spec.Containers {
			names = append(names, c.Name)
		}
		for _, c := range names {
			out, err := cluster.ContainerLog(ctx, ns, p.Name, c)
			if err != nil {
				t.Logf("  %s: %v", c, err)
				continue
			}
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("  %s/%s, last %d lines:\n    %s", p.Name, c, len(lines), strings.Join(lines, "\n    "))
		}
	}
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// TestNodesAreKubeletsOnContainerd: every node is a Ready upstream kubelet
// of the control plane's version, on containerd.
func TestNodesAreKubeletsOnContainerd(t *testing.T) {
	ctx := context.Background()
	nodes, err := cluster.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("want 3 nodes, got %d", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		info := n.Status.NodeInfo
		t.Logf("node %s: kubelet %s, runtime %s, kernel %s", n.Name, info.KubeletVersion, info.ContainerRuntimeVersion, info.KernelVersion)
		if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") {
			t.Errorf("node %s: runtime %q, want containerd://...", n.Name, info.ContainerRuntimeVersion)
		}
		if info.KubeletVersion != "v1.34.4" {
			t.Errorf("node %s: kubelet %q, want v1.34.4 (the control plane's version)", n.Name, info.KubeletVersion)
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			t.Errorf("node %s is not Ready", n.Name)
		}
	}
}

// TestEngineImages runs each Redis/Valkey image the project supports and
// asks the server binary inside for its version: the tag must be what runs.
func TestEngineImages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "engines")
	cases := map[string]struct {
		image, server, want string
	}{
		"redis-7-0":  {"redis:7.0.15", "redis-server", "v=7.0.15"},
		"valkey-8-0": {"valkey/valkey:8.0.1", "valkey-server", "v=8.0.1"},
		"redis-8-0":  {"redis:8.0.2", "redis-server", "v=8.0.2"},
		"valkey-8-1": {"valkey/valkey:8.1.1", "valkey-server", "v=8.1.1"},
	}
	for name, tc := range cases {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "redis", Image: tc.image, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{tc.server, "--save", "", "--appendonly", "no"},
					SecurityContext: &corev1.SecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](999),
						ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
		if _, err := cluster.Clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			waitRunning(t, ctx, ns, name)
			var out, errb bytes.Buffer
			if err := cluster.Exec(ctx, ns, name, "redis", []string{tc.server, "--version"}, &out, &errb); err != nil {
				t.Fatalf("exec %s --version: %v (%s)", tc.server, err, errb.String())
			}
			t.Logf("%s: %s", tc.image, strings.TrimSpace(out.String()))
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("%s --version in image %s printed %q, want %s", tc.server, tc.image, out.String(), tc.want)
			}
			out.Reset()
			if err := cluster.Exec(ctx, ns, name, "redis", []string{"sh", "-c", "redis-cli ping || valkey-cli ping"}, &out, &errb); err != nil {
				t.Fatalf("ping: %v (%s)", err, errb.String())
			}
			if strings.TrimSpace(out.String()) != "PONG" {
				t.Errorf("ping the server in %s: %q", tc.image, out.String())
			}
		})
	}
}

func waitRunning(t *testing.T, ctx context.Context, ns, name string) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not ready: %v; status %+v", ns, name, err, last.Status)
	}
	return last
}

// TestMemoryLimitOOMKill: a container that grows past its memory limit is
// OOM-killed by the kernel and restarted by the kubelet — limits are real.
func TestMemoryLimitOOMKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "oom")
	limit := resource.MustParse("32Mi")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hog"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "hog", Image: "redis:7.0.15", ImagePullPolicy: corev1.PullIfNotPresent,
				// tail keeps the last line of an endless line in memory.
				Command:   []string{"sh", "-c", "tail /dev/zero"},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: limit}},
			}},
		},
	}
	if _, err := cluster.Clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last corev1.ContainerStatus
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, "hog", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, nil
		}
		last = p.Status.ContainerStatuses[0]
		term := last.LastTerminationState.Terminated
		return last.RestartCount >= 1 && term != nil && term.Reason == "OOMKilled", nil
	})
	if err != nil {
		t.Fatalf("container over its 32Mi limit was not OOM-killed and restarted: last status %+v", last)
	}
	t.Logf("OOMKilled (exit %d), restarted %d time(s)", last.LastTerminationState.Terminated.ExitCode, last.RestartCount)
}

// memoryLimit reads the memory limit of a process's memory cgroup (v1).
func memoryLimit(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
			if err != nil {
				return 0, err
			}
			var n int64
			_, err = fmt.Sscan(string(v), &n)
			return n, err
		}
	}
	return 0, fmt.Errorf("process %d has no v1 memory cgroup", pid)
}
