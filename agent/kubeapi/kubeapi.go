package kubeapi

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
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

// Clients is the Kubernetes API as the agent uses it: the typed clients of the
// four API groups it reads and writes. Not the whole clientset: that links
// every API group's client, and the discovery client, into the binary
// every Redis pod runs. *kubernetes.Clientset and the fake clientset satisfy
// it, so tests hand in either.
type Clients interface {
	CoreV1() corev1client.CoreV1Interface
	AppsV1() appsv1client.AppsV1Interface
	CoordinationV1() coordinationv1client.CoordinationV1Interface
	EventsV1() eventsv1client.EventsV1Interface
}

// kubeClients is Clients built from its four typed clients.
type kubeClients struct {
	core         *corev1client.CoreV1Client
	apps         *appsv1client.AppsV1Client
	coordination *coordinationv1client.CoordinationV1Client
	events       *eventsv1client.EventsV1Client
}

func (k *kubeClients) CoreV1() corev1client.CoreV1Interface { return k.core }
func (k *kubeClients) AppsV1() appsv1client.AppsV1Interface { return k.apps }
func (k *kubeClients) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return k.coordination
}
func (k *kubeClients) EventsV1() eventsv1client.EventsV1Interface { return k.events }

// New builds the four typed clients the way kubernetes.NewForConfig
// builds all of them: one HTTP client (one connection pool) and one rate
// limiter (QPS and Burst) shared by all groups.
func New(c *rest.Config) (Clients, error) {
	cfg := *c
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	httpClient, err := rest.HTTPClientFor(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("burst is required to be greater than 0 when RateLimiter is not set and QPS is set to greater than 0")
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	var k kubeClients
	if k.core, err = corev1client.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if k.apps, err = appsv1client.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if k.coordination, err = coordinationv1client.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if k.events, err = eventsv1client.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	return &k, nil
}

// NewClients builds the general client and a separate one for the Lease,
// so bursts of other API traffic can't throttle renewals.
func NewClients(kubeconfig, userAgent string) (general, election Clients, err error) {
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
	if general, err = New(g); err != nil {
		return nil, nil, err
	}
	if election, err = New(e); err != nil {
		return nil, nil, err
	}
	return general, election, nil
}

// NewRecorder starts an events.k8s.io broadcaster; stop flushes it.
func NewRecorder(ctx context.Context, client Clients) (rec events.EventRecorder, stop func()) {
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	b.StartRecordingToSink(ctx.Done())
	return b.NewRecorder(scheme.Scheme, "redis-ha-agent"), b.Shutdown
}

// PodRef fetches this pod, the object every Event is about.
func PodRef(ctx context.Context, client Clients, namespace, name string) (*corev1.Pod, error) {
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get own pod %s/%s (needs RBAC get on pods): %w", namespace, name, err)
	}
	return pod, nil
}

// SetPodLabel sets (or, with value "", removes) one label on a pod with a
// JSON merge patch, which touches no other field. It is the agent's only
// write to pods, the one manifests/components/pod-guard admits.
func SetPodLabel(ctx context.Context, client Clients, namespace, pod, key, value string) error {
	var v any = value
	if value == "" {
		v = nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: v}}})
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Pods(namespace).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set label %s=%q on pod %s/%s (needs RBAC patch on pods; the redis-ha-agent-pod-guard admission policy, if installed, admits only the label redis-ha-agent/role on pods of the agent's own StatefulSet): %w", key, value, namespace, pod, err)
	}
	return nil
}

// StatefulSetReplicas reads spec.replicas of a StatefulSet (1 when unset).
func StatefulSetReplicas(ctx context.Context, client Clients, namespace, name string) (int, error) {
	sts, err := client.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("read spec.replicas of StatefulSet %s/%s (needs RBAC get on statefulsets, or set --replicas): %w", namespace, name, err)
	}
	if sts.Spec.Replicas == nil {
		return 1, nil
	}
	return int(*sts.Spec.Replicas), nil
}
