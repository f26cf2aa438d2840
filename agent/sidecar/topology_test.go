package sidecar

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// A scale-in deletes the pods right after spec.replicas drops: the pass
// loop may see the count up to stsCacheTTL late, preStop must not.
func TestKubeTopologyExpectedNowBypassesTheCache(t *testing.T) {
	ctx := context.Background()
	replicas := int32(8)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "redis-cluster", Namespace: "ns"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis-cluster"}},
		},
	}
	client := fake.NewClientset(sts)
	now := time.Unix(1000, 0)
	k := &KubeTopology{Client: client, Config: config.Config{Identity: config.Identity{Namespace: "ns", StatefulSet: "redis-cluster"}}, now: func() time.Time { return now }}
	expect := func(what string, f func(context.Context) (int, error), want int) {
		t.Helper()
		got, err := f(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got != want {
			t.Fatalf("%s = %d, want %d", what, got, want)
		}
	}
	expect("Expected", k.Expected, 8)
	scaled := sts.DeepCopy()
	six := int32(6)
	scaled.Spec.Replicas = &six
	if _, err := client.AppsV1().StatefulSets("ns").Update(ctx, scaled, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("Expected within the TTL", k.Expected, 8)
	expect("ExpectedNow", k.ExpectedNow, 6)
	expect("Expected after a fresh read", k.Expected, 6)
	now = now.Add(stsCacheTTL)
	expect("Expected after the TTL", k.Expected, 6)
}
