package manifests

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
// Ready, and no agent log mentions a refused API call.
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
}
