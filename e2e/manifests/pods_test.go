package manifests

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// waitPods waits until n pods match selector, all Running and Ready, none
// of them in skip (the UIDs of a previous incarnation), and returns them by
// ordinal.
func waitPods(t *testing.T, ctx context.Context, ns, selector string, n int, skip map[types.UID]bool, timeout time.Duration) []corev1.Pod {
	t.Helper()
	pods, last, err := pollPods(ctx, ns, selector, n, skip, timeout)
	if err != nil {
		t.Fatalf("waiting %s for %d Running+Ready pods %q in %s: %v (last: %s)", timeout, n, selector, ns, err, last)
	}
	return pods
}

func pollPods(ctx context.Context, ns, selector string, n int, skip map[types.UID]bool, timeout time.Duration) ([]corev1.Pod, string, error) {
	var pods []corev1.Pod
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pods = l.Items
		var states []string
		ready := 0
		for _, p := range pods {
			ok := p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && podReady(&p) && !skip[p.UID] && p.Status.PodIP != ""
			if ok {
				ready++
			}
			states = append(states, fmt.Sprintf("%s=%s/ready=%v/new=%v", p.Name, p.Status.Phase, podReady(&p), !skip[p.UID]))
		}
		last = strings.Join(states, " ")
		return len(pods) == n && ready == n, nil
	})
	sortByOrdinal(pods)
	return pods, last, err
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func sortByOrdinal(pods []corev1.Pod) {
	ord := func(name string) int {
		n, _ := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
		return n
	}
	sort.Slice(pods, func(i, j int) bool { return ord(pods[i].Name) < ord(pods[j].Name) })
}

// execIn runs cmd in a container and returns its stdout.
func execIn(ctx context.Context, ns, pod, container string, cmd ...string) (string, error) {
	var out, errOut bytes.Buffer
	if err := cluster.Exec(ctx, ns, pod, container, cmd, &out, &errOut); err != nil {
		return out.String(), fmt.Errorf("exec %q in %s/%s[%s]: %w: %s%s", cmd, ns, pod, container, err, out.String(), errOut.String())
	}
	return out.String(), nil
}

// containerLog is what a container of the pod's current incarnation wrote
// so far, its previous run's lines first (Cluster.ContainerLog); empty when
// the logs cannot be read.
func containerLog(ns string, pod *corev1.Pod, container string) string {
	b, err := cluster.ContainerLog(context.Background(), ns, pod.Name, container)
	if err != nil {
		return ""
	}
	return b
}
