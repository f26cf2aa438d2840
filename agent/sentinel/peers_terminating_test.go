package sentinel

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestAllPeersStopping runs the full-restart check of the sentinel preStop
// against a real API server: pods held by a finalizer keep their deletion
// timestamp, as pods in their grace period do; a pod without a node is
// deleted at once and can be created again under its name, as a
// StatefulSet replaces a deleted pod.
func TestAllPeersStopping(t *testing.T) {
	rc, _ := proctest.StartAPIServer(t)
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := config.Config{Identity: config.Identity{PodName: "redis-0", Namespace: "default", StatefulSet: "redis"}}
	create := func(name string, hold bool) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "redis", Image: "redis"}}}}
		if hold {
			p.Finalizers = []string{"test.redis-ha-agent/hold"}
		}
		if _, err := kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"redis-0", "redis-1"} {
		create(name, true)
	}
	create("redis-2", false)
	read := func() map[int]peerPod {
		t.Helper()
		pods, err := readPeerPods(ctx, kube, cfg, 4) // redis-3 never existed
		if err != nil {
			t.Fatal(err)
		}
		return pods
	}
	first := read()
	check := func(step string, first map[int]peerPod, want bool) {
		t.Helper()
		if got := allPeersStopping(first, read()); got != want {
			t.Errorf("%s: allPeersStopping = %t, want %t (first %v, now %v)", step, got, want, first, read())
		}
	}
	del := func(name string) {
		t.Helper()
		if err := kube.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check("no pod deleted", first, false)
	del("redis-1")
	check("one of two peers deleted (a rolling restart)", first, false)
	del("redis-0")
	check("self and one peer deleted", first, false)
	del("redis-2")
	check("every peer deleted (a full restart)", first, true)
	create("redis-2", false)
	check("every peer deleted, one already replaced since preStop began", first, true)
	check("a peer replaced before preStop began (a rolling restart)", read(), false)
}
