package agent

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestAllPeersTerminating runs the full-restart check of the sentinel
// preStop against a real API server: pods held by a finalizer keep their
// deletion timestamp, as pods in their grace period do.
func TestAllPeersTerminating(t *testing.T) {
	rc, _ := startAPIServer(t)
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := Config{Identity: Identity{PodName: "redis-0", Namespace: "default", StatefulSet: "redis"}}
	for _, name := range []string{"redis-0", "redis-1", "redis-2"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{"test.redis-ha-agent/hold"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "redis", Image: "redis"}}}}
		if _, err := kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, want bool) {
		t.Helper()
		got, err := allPeersTerminating(ctx, kube, cfg, 4) // redis-3 never existed
		if err != nil || got != want {
			t.Errorf("%s: allPeersTerminating = %t, %v; want %t", step, got, err, want)
		}
	}
	del := func(name string) {
		if err := kube.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check("no pod deleted", false)
	del("redis-1")
	check("one of two peers deleted (a rolling restart)", false)
	del("redis-0")
	check("self and one peer deleted", false)
	del("redis-2")
	check("every peer deleted (a full restart)", true)
}
