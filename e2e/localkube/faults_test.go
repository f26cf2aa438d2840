package localkube_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

func redisPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "faults"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "redis", Image: "redis:7.0",
			Command: []string{"redis-server", "--protected-mode", "no", "--save", ""},
		}}},
	}
}

// pingFromCluster reports whether redis at ip answers from the cluster network.
func pingFromCluster(ctx context.Context, ip string) error {
	rc := redis.NewClient(&redis.Options{Addr: ip + ":6379", Dialer: cluster.DialContext, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer rc.Close()
	return rc.Ping(ctx).Err()
}

// execErr runs cmd in a pod and returns its error (nil: exit 0).
func execErr(ctx context.Context, ns, pod string, cmd ...string) error {
	var out bytes.Buffer
	return cluster.Exec(ctx, ns, pod, "", cmd, &out, &out)
}

// TestNetworkFaults checks Partition/Heal and CutAPI/RestoreAPI on one pod
// against a second pod, the cluster network and the pod's own loopback.
func TestNetworkFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "harness-faults")
	for _, name := range []string{"a", "b"} {
		if _, err := cluster.Clientset.CoreV1().Pods(ns).Create(ctx, redisPod(ns, name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pods := waitPods(t, ctx, ns, "app=faults", 2, 2*time.Minute)
	aIP, bIP := pods[0].Status.PodIP, pods[1].Status.PodIP
	// Readiness has no probe here: wait until redis in a answers.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return pingFromCluster(ctx, aIP) == nil && pingFromCluster(ctx, bIP) == nil, nil
	}); err != nil {
		t.Fatalf("redis in pods a (%s) and b (%s) never answered: %v", aIP, bIP, err)
	}

	if err := cluster.Partition(ctx, ns, "a"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Heal(context.Background(), ns, "a") })
	if err := pingFromCluster(ctx, aIP); err == nil {
		t.Error("partitioned pod a answered from the cluster network")
	}
	if err := execErr(ctx, ns, "b", "timeout", "2", "redis-cli", "-h", aIP, "ping"); err == nil {
		t.Error("pod b reached partitioned pod a")
	}
	if err := execErr(ctx, ns, "a", "timeout", "2", "redis-cli", "-h", bIP, "ping"); err == nil {
		t.Error("partitioned pod a reached pod b")
	}
	if got := exec(t, ctx, ns, "a", "redis-cli", "-h", "127.0.0.1", "ping"); got != "PONG" {
		t.Errorf("loopback inside partitioned pod a: %q, want PONG", got)
	}
	if err := cluster.Partition(ctx, ns, "a"); err != nil {
		t.Errorf("second Partition of a: %v, want no-op", err)
	}
	if err := cluster.Heal(ctx, ns, "a"); err != nil {
		t.Fatal(err)
	}
	if err := pingFromCluster(ctx, aIP); err != nil {
		t.Errorf("healed pod a: %v", err)
	}
	if got := exec(t, ctx, ns, "b", "redis-cli", "-h", aIP, "ping"); got != "PONG" {
		t.Errorf("pod b to healed pod a: %q", got)
	}

	apiReachable := func() error {
		return execErr(ctx, ns, "a", "timeout", "2", "bash", "-c", "</dev/tcp/10.96.0.1/443 && </dev/tcp/10.244.0.1/6443")
	}
	if err := apiReachable(); err != nil {
		t.Fatalf("API server from pod a before cut-api: %v", err)
	}
	if err := cluster.CutAPI(ctx, ns, "a"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.RestoreAPI(context.Background(), ns, "a") })
	if err := execErr(ctx, ns, "a", "timeout", "2", "bash", "-c", "</dev/tcp/10.96.0.1/443"); err == nil {
		t.Error("pod a reached 10.96.0.1:443 after CutAPI")
	}
	if err := execErr(ctx, ns, "a", "timeout", "2", "bash", "-c", "</dev/tcp/10.244.0.1/6443"); err == nil {
		t.Error("pod a reached 10.244.0.1:6443 after CutAPI")
	}
	if got := exec(t, ctx, ns, "a", "redis-cli", "-h", bIP, "ping"); got != "PONG" {
		t.Errorf("pod a to pod b during CutAPI: %q, want PONG (only the API is cut)", got)
	}
	if err := cluster.RestoreAPI(ctx, ns, "a"); err != nil {
		t.Fatal(err)
	}
	if err := apiReachable(); err != nil {
		t.Errorf("API server from pod a after RestoreAPI: %v", err)
	}
}

// TestAPIServerStopStart stops kube-apiserver, checks that the API is gone
// while pods keep serving and a partition set before can still be healed,
// and that the API comes back with the same data.
func TestAPIServerStopStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "harness-apistop")
	if _, err := cluster.Clientset.CoreV1().Pods(ns).Create(ctx, redisPod(ns, "c"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitPods(t, ctx, ns, "app=faults", 1, 2*time.Minute)[0]
	if err := cluster.Partition(ctx, ns, "c"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Heal(context.Background(), ns, "c") })
	if got := faultsOf(ns + "/c"); !slices.Equal(got, []string{"partition"}) {
		t.Errorf("NetworkFaults of %s/c after Partition = %v, want [partition]", ns, got)
	}
	if err := cluster.StopAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.StartAPIServer(context.Background()) })
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	_, err := cluster.Clientset.CoreV1().Namespaces().Get(short, ns, metav1.GetOptions{})
	cancelShort()
	if err == nil {
		t.Fatal("API answered after StopAPIServer")
	}
	healStart := time.Now()
	if err := cluster.Heal(ctx, ns, "c"); err != nil {
		t.Errorf("Heal while the API server is down: %v", err)
	}
	t.Logf("healed without the API in %s", time.Since(healStart).Round(time.Millisecond))
	if got := faultsOf(ns + "/c"); len(got) != 0 {
		t.Errorf("NetworkFaults of %s/c after Heal = %v, want none", ns, got)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		return pingFromCluster(ctx, pod.Status.PodIP) == nil, nil
	}); err != nil {
		t.Errorf("pod c (%s), healed, did not serve while the API server was down: %v", pod.Status.PodIP, err)
	}
	start := time.Now()
	if err := cluster.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server back in %s", time.Since(start).Round(time.Millisecond))
	got, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, "c", metav1.GetOptions{})
	if err != nil || got.UID != pod.UID {
		t.Fatalf("pod c after restart: %v, %v; want the same pod (UID %s)", got, err, pod.UID)
	}
}

// faultsOf lists the network faults in effect on one pod (<ns>/<name>).
func faultsOf(pod string) []string {
	var out []string
	for _, f := range cluster.NetworkFaults() {
		if f.Pod == pod {
			out = append(out, f.Fault)
		}
	}
	return out
}
