package sidecar

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
)

// KubeTopology reads spec.replicas and pod placement of the StatefulSet.
// The StatefulSet is read at most once per stsCacheTTL: every agent asks
// for spec.replicas on every pass, and a scale is seen soon enough within
// the TTL (the new pods read it fresh when they start).
type KubeTopology struct {
	Client kubeapi.Clients
	Config config.Config

	mu       sync.Mutex
	replicas int
	selector labels.Selector // immutable on a StatefulSet: read once
	readAt   time.Time
	now      func() time.Time
}

const stsCacheTTL = 30 * time.Second

func (k *KubeTopology) statefulSet(ctx context.Context, fresh bool) (int, labels.Selector, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now
	if k.now != nil {
		now = k.now
	}
	if !fresh && k.selector != nil && now().Sub(k.readAt) < stsCacheTTL {
		return k.replicas, k.selector, nil
	}
	sts, err := k.Client.AppsV1().StatefulSets(k.Config.Namespace).Get(ctx, k.Config.StatefulSet, metav1.GetOptions{})
	if err != nil {
		return 0, nil, fmt.Errorf("read StatefulSet %s/%s (needs RBAC get on statefulsets): %w", k.Config.Namespace, k.Config.StatefulSet, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		return 0, nil, fmt.Errorf("selector of StatefulSet %s/%s: %w", k.Config.Namespace, k.Config.StatefulSet, err)
	}
	k.replicas, k.selector, k.readAt = 1, sel, now()
	if sts.Spec.Replicas != nil {
		k.replicas = int(*sts.Spec.Replicas)
	}
	return k.replicas, k.selector, nil
}

func (k *KubeTopology) Expected(ctx context.Context) (int, error) {
	return k.expected(ctx, false)
}

func (k *KubeTopology) ExpectedNow(ctx context.Context) (int, error) {
	return k.expected(ctx, true)
}

func (k *KubeTopology) expected(ctx context.Context, fresh bool) (int, error) {
	if k.Config.Replicas > 0 {
		return k.Config.Replicas, nil
	}
	n, _, err := k.statefulSet(ctx, fresh)
	if err != nil {
		return 0, fmt.Errorf("%w; or set --replicas", err)
	}
	return n, nil
}

func (k *KubeTopology) Placement(ctx context.Context) (map[int]string, error) {
	_, sel, err := k.statefulSet(ctx, false)
	if err != nil {
		return nil, err
	}
	pods, err := k.Client.CoreV1().Pods(k.Config.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of StatefulSet %s/%s (needs RBAC list on pods): %w", k.Config.Namespace, k.Config.StatefulSet, err)
	}
	out := map[int]string{}
	for _, p := range pods.Items {
		n, ok := strings.CutPrefix(p.Name, k.Config.StatefulSet+"-")
		if !ok {
			continue
		}
		if o, err := strconv.Atoi(n); err == nil && p.Spec.NodeName != "" {
			out[o] = p.Spec.NodeName
		}
	}
	return out, nil
}
