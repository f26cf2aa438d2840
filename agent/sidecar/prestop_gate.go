package sidecar

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
)

// preStopVerdict decides whether a /prestop call may hand this pod's role
// over: only while this very pod is being deleted. The HTTP port is open to
// every pod in the cluster, and a handover started by anyone else would
// move the master (measured: one GET from another pod moved it) and leave
// this agent off duty. pod is this pod as the API server has it, nil when
// it is gone; ownUID is its UID as first seen ("" when never seen): a pod
// of the same name with another UID is the StatefulSet's replacement, so
// this one was deleted.
func preStopVerdict(pod *corev1.Pod, ownUID types.UID) (ok bool, reason string) {
	switch {
	case pod == nil:
		return true, "this pod is gone from the API server (deleted)"
	case ownUID != "" && pod.UID != ownUID:
		return true, fmt.Sprintf("pod %s is a new pod (uid %s, this one was %s): this one was deleted", pod.Name, pod.UID, ownUID)
	case pod.DeletionTimestamp != nil:
		return true, fmt.Sprintf("pod %s is being deleted (deletionTimestamp %s)", pod.Name, pod.DeletionTimestamp.UTC().Format(time.RFC3339))
	default:
		return false, fmt.Sprintf("pod %s is not being deleted (no deletionTimestamp)", pod.Name)
	}
}

// selfPod reads this pod from the API server for preStopVerdict.
type selfPod struct {
	kube      kubeapi.Clients
	namespace string
	name      string
	clock     clock.Clock

	mu  sync.Mutex
	uid types.UID // first seen while not being deleted
}

func NewSelfPod(cfg config.Config, deps Deps) *selfPod {
	return &selfPod{kube: deps.Kube, namespace: cfg.Namespace, name: cfg.PodName, clock: deps.Clock}
}

// SelfPodReadTimeout bounds how long a /prestop call tries to read its own
// pod. A deletion comes through the API server, so it answered moments ago;
// when it does not answer now the call is refused rather than trusted.
const SelfPodReadTimeout = 5 * time.Second

// Terminating reports whether this pod is being deleted, and why. err: the
// pod could not be read (needs RBAC get on pods); then ok is false.
func (s *selfPod) Terminating(ctx context.Context) (ok bool, reason string, err error) {
	ctx, cancel := context.WithTimeout(ctx, SelfPodReadTimeout)
	defer cancel()
	var pod *corev1.Pod
	for {
		pod, err = s.kube.CoreV1().Pods(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			pod, err = nil, nil
		}
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-s.clock.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return false, "", fmt.Errorf("read pod %s/%s to check that it is being deleted (needs RBAC get on pods): %w", s.namespace, s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, reason = preStopVerdict(pod, s.uid)
	if !ok && s.uid == "" {
		s.uid = pod.UID
	}
	return ok, reason, nil
}
