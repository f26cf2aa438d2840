package localkube_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestServiceAccountTokenRBAC checks that RBAC is enforced for the agent's
// real credentials: a TokenRequest token without a Role is refused on
// Leases, and allowed once a Role grants them.
func TestServiceAccountTokenRBAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "harness-rbac")
	cs := cluster.Clientset
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "agent"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "agent", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrInt64(600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/agent: %v", ns, err)
	}
	cfg := rest.AnonymousClientConfig(cluster.RESTConfig)
	cfg.BearerToken = tr.Status.Token
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "redis"}}
	_, err = sa.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("creating a Lease without a Role: err = %v, want 403 Forbidden", err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "leases"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			Verbs: []string{"get", "list", "watch", "create", "update"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "leases"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "leases"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "agent", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The authorizer's informers see the binding within moments.
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = sa.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{})
		return last == nil, nil
	}); err != nil {
		t.Fatalf("creating a Lease with a Role: %v (last: %v)", err, last)
	}
	if _, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing pods with a Lease-only Role: err = %v, want 403 Forbidden", err)
	}
}

func ptrInt64(v int64) *int64 { return &v }

// TestSeed002RunsUnchanged applies the seed's manifests verbatim (hostpath
// StorageClass, fixed ClusterIP 10.96.0.106, a ConfigMap script as the
// container command) and expects the six pods to run.
func TestSeed002RunsUnchanged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := cluster.Apply(ctx, "../testdata/seed002"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Kubectl(context.Background(), nil, nil, "delete", "--wait=false", "-k", "../testdata/seed002")
	})
	pods := waitPods(t, ctx, "default", "app=redis-cluster", 6, 3*time.Minute)
	for _, p := range pods {
		rc := redis.NewClient(&redis.Options{Addr: p.Status.PodIP + ":6379", Dialer: cluster.DialContext})
		info, err := rc.Info(ctx, "cluster").Result()
		rc.Close()
		if err != nil || !contains(info, "cluster_enabled:1") {
			t.Errorf("INFO cluster on %s (%s) = %q, %v; want cluster_enabled:1", p.Name, p.Status.PodIP, info, err)
		}
	}
	svc, err := cluster.Clientset.CoreV1().Services("default").Get(ctx, "redis-cluster", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != "10.96.0.106" {
		t.Fatalf("Service redis-cluster: clusterIP %v, %v; want 10.96.0.106", svc, err)
	}
	eventually(t, ctx, "PING through ClusterIP 10.96.0.106", 30*time.Second, func(ctx context.Context) error {
		rc := redis.NewClient(&redis.Options{Addr: "10.96.0.106:6379", Dialer: cluster.DialContext, MaxRetries: -1})
		defer rc.Close()
		return rc.Ping(ctx).Err()
	})
}
