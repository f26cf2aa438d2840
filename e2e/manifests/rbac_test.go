package manifests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

const (
	sentinelSelector = "app.kubernetes.io/name=redis,app.kubernetes.io/instance=redis"
	clusterSelector  = "app.kubernetes.io/name=redis-cluster,app.kubernetes.io/instance=redis-cluster"
	roleLabel        = "redis-ha-agent/role"
)

// layoutUnderTest is an overlay the RBAC cases deploy.
type layoutUnderTest struct {
	overlay, sts, selector string
	pods                   int
}

var (
	sentinel3 = layoutUnderTest{overlay: "overlays/sentinel-3", sts: "redis", selector: sentinelSelector, pods: 3}
	cluster6  = layoutUnderTest{overlay: "overlays/cluster-6", sts: "redis-cluster", selector: clusterSelector, pods: 6}
)

// TestRBACFullRoleWorks: with the Role exactly as shipped, sentinel-3
// elects and labels a master and cluster-6 creates its cluster, every pod
// Ready, and no agent log mentions a refused API call; the pod guard
// (components/pod-guard, in both builds) lets the agent's token change the
// role label and refuses it an image change.
func TestRBACFullRoleWorks(t *testing.T) {
	for _, l := range []layoutUnderTest{sentinel3, cluster6} {
		t.Run(l.overlay, func(t *testing.T) { deployHealthy(t, l, nil) })
	}
	// The steps the RBAC cases drive after a cold start succeed with the
	// full Role.
	t.Run("overlays/sentinel-3/switchover-without-peer-dns", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ns := newNamespace(t, ctx, "rbac-full")
		if err := newApplier(t).apply(ctx, ns, kustomize(t, ctx, manifestsDir+"/"+sentinel3.overlay), false); err != nil {
			t.Fatal(err)
		}
		waitPods(t, ctx, ns, sentinelSelector, 3, nil, 90*time.Second)
		start := time.Now()
		switchoverWithoutPeerDNS(t, ctx, ns)
		var detail string
		for time.Since(start) < 45*time.Second {
			var missing bool
			if missing, detail = noSwitchover(ctx, ns); !missing {
				t.Logf("switchover without peer DNS completed in %s: %s", time.Since(start).Round(time.Millisecond), detail)
				return
			}
			time.Sleep(500 * time.Millisecond) // poll interval, bounded
		}
		logs, _ := agentLogs(ctx, ns, sentinelSelector)
		t.Fatalf("with the full Role, the master's preStop switchover did not complete within 45s without peer DNS: %s\n%s", detail, tail(logs, 40))
	})
}

// deployHealthy deploys the layout (its Role changed by mutate, if set)
// and requires it to come up as with the full Role.
func deployHealthy(t *testing.T, l layoutUnderTest, mutate func([]*unstructured.Unstructured)) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	ns := newNamespace(t, ctx, "rbac-full")
	objs := kustomize(t, ctx, manifestsDir+"/"+l.overlay)
	if mutate != nil {
		mutate(objs)
	}
	if err := newApplier(t).apply(ctx, ns, objs, false); err != nil {
		t.Fatal(err)
	}
	if _, last, err := pollPods(ctx, ns, l.selector, l.pods, nil, 3*time.Minute); err != nil {
		logs, _ := agentLogs(ctx, ns, l.selector)
		t.Fatalf("%s: pods not Ready: %v (last: %s)\n%s\nagent logs:\n%s", l.overlay, err, last, podSummary(ctx, ns, l.selector), logs)
	}
	ready := time.Since(start)
	if l == sentinel3 {
		masters, err := podsWithLabel(ctx, ns, l.selector, roleLabel, "master")
		if err != nil || len(masters) != 1 {
			t.Fatalf("pods labelled %s=master: %v, %v; want exactly one", roleLabel, masters, err)
		}
	}
	logs, err := agentLogs(ctx, ns, l.selector)
	if err != nil {
		t.Fatal(err)
	}
	if bad := grepLines(logs, "forbidden"); len(bad) > 0 {
		t.Errorf("agent logs mention forbidden calls:\n%s", strings.Join(bad, "\n"))
	}
	reasons, series, err := agentEvents(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d pods Ready after %s; agent Events by reason %v, %d with a series", l.overlay, l.pods, ready.Round(time.Millisecond), reasons, series)
	if mutate == nil {
		checkPodGuard(t, ctx, ns, l)
	}
}

// checkPodGuard asks the API server, with the agent's own credentials (a
// TokenRequest for the StatefulSet's ServiceAccount), to change pod 0's
// role label and its redis image: the first is admitted, the second
// refused by the pod guard with its message. Dry runs: admission and RBAC
// decide as for a real patch, and the running agents see no change.
func checkPodGuard(t *testing.T, ctx context.Context, ns string, l layoutUnderTest) {
	t.Helper()
	const policy = "redis-ha-agent-pod-guard"
	sa := l.sts + "-ha-agent"
	tr, err := cluster.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for the agent's ServiceAccount %s/%s: %v", ns, sa, err)
	}
	cfg := rest.AnonymousClientConfig(cluster.RESTConfig)
	cfg.BearerToken = tr.Status.Token
	agent, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pods := agent.CoreV1().Pods(ns)
	pod := l.sts + "-0"
	p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	role := "replica"
	if p.Labels[roleLabel] == role {
		role = "master"
	}
	label := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, roleLabel, role)
	if _, err := pods.Patch(ctx, pod, types.MergePatchType, []byte(label), dry); err != nil {
		t.Errorf("agent token: setting %s=%s on %s (dry run) refused: %v", roleLabel, role, pod, err)
	}
	image := []byte(`{"spec":{"containers":[{"name":"redis","image":"busybox:latest"}]}}`)
	want := fmt.Sprintf("system:serviceaccount:%s:%s may change only the label %s of pod %s, not its spec", ns, sa, roleLabel, pod)
	// The policy was applied with the layout; the API server enforces it
	// once its informer has it (long before the pods were Ready).
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = pods.Patch(ctx, pod, types.StrategicMergePatchType, image, dry)
		return last != nil && strings.Contains(last.Error(), policy), nil
	}); err != nil || !apierrors.IsForbidden(last) || !strings.Contains(last.Error(), want) {
		t.Errorf("agent token: image patch of %s (dry run): err = %v; want 403 from %s saying %q", pod, last, policy, want)
		return
	}
	t.Logf("pod guard: the agent's token may set %s=%s on %s; its image patch is refused: %v", roleLabel, role, pod, last)
}
