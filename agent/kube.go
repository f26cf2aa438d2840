package agent

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
)

// RESTConfig loads the kubeconfig file, or the pod's service account when
// the path is empty.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load --kubeconfig (KUBECONFIG) %s: %w", kubeconfig, err)
		}
		return c, nil
	}
	c, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --kubeconfig (KUBECONFIG) and no in-cluster service account (%w): mount the service-account token into the agent container or set --kubeconfig", err)
	}
	return c, nil
}

// newClients builds the general client and a separate one for the Lease,
// so bursts of other API traffic can't throttle renewals.
func newClients(kubeconfig, userAgent string) (general, election kubernetes.Interface, err error) {
	base, err := RESTConfig(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	g := rest.CopyConfig(base)
	g.UserAgent = userAgent
	g.QPS, g.Burst = 5, 10
	e := rest.CopyConfig(base)
	e.UserAgent = userAgent + "/election"
	e.QPS, e.Burst = 5, 10
	if general, err = kubernetes.NewForConfig(g); err != nil {
		return nil, nil, err
	}
	if election, err = kubernetes.NewForConfig(e); err != nil {
		return nil, nil, err
	}
	return general, election, nil
}

// newRecorder starts an events.k8s.io broadcaster; stop flushes it.
func newRecorder(ctx context.Context, client kubernetes.Interface) (rec events.EventRecorder, stop func()) {
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	b.StartRecordingToSink(ctx.Done())
	return b.NewRecorder(scheme.Scheme, "redis-ha-agent"), b.Shutdown
}

// PodRef fetches this pod, the object every Event is about.
func PodRef(ctx context.Context, client kubernetes.Interface, namespace, name string) (*corev1.Pod, error) {
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get own pod %s/%s (needs RBAC get on pods): %w", namespace, name, err)
	}
	return pod, nil
}

// SetPodLabel sets (or, with value "", removes) one label on a pod with a
// JSON merge patch, which touches no other field.
func SetPodLabel(ctx context.Context, client kubernetes.Interface, namespace, pod, key, value string) error {
	var v any = value
	if value == "" {
		v = nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: v}}})
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Pods(namespace).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set label %s=%q on pod %s/%s (needs RBAC patch on pods): %w", key, value, namespace, pod, err)
	}
	return nil
}

// ExpectedReplicas is --replicas, or the StatefulSet's spec.replicas when
// that is 0.
func ExpectedReplicas(ctx context.Context, client kubernetes.Interface, cfg Config) (int, error) {
	if cfg.Replicas > 0 {
		return cfg.Replicas, nil
	}
	sts, err := client.AppsV1().StatefulSets(cfg.Namespace).Get(ctx, cfg.StatefulSet, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("read spec.replicas of StatefulSet %s/%s (needs RBAC get on statefulsets, or set --replicas): %w", cfg.Namespace, cfg.StatefulSet, err)
	}
	if sts.Spec.Replicas == nil {
		return 1, nil
	}
	return int(*sts.Spec.Replicas), nil
}
