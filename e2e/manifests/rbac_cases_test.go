package manifests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// rbacCase removes one verb of one rule of the shipped Role and names the
// agent step that needs it. failed reports whether the step's effect is
// missing (true) once the layout had the time it needs with the full Role.
type rbacCase struct {
	rule     int
	group    string
	resource string
	verb     string
	layout   layoutUnderTest
	step     string
	failed   func(ctx context.Context, ns string) (bool, string)
	// exercise, if set, drives the step once the layout is Ready (steps a
	// cold start does not reach).
	exercise func(t *testing.T, ctx context.Context, ns string)
}

func (c rbacCase) name() string {
	g := c.group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("rule%d-%s-%s-%s", c.rule, g, c.resource, c.verb)
}

// refusal is how the API server words the 403 the agent must pass on.
func (c rbacCase) refusal() string {
	return fmt.Sprintf(`cannot %s resource "%s" in API group "%s"`, c.verb, c.resource, c.group)
}

// rbacCases maps every verb of every rule of manifests/components/rbac's
// Role to the agent step that fails without it (the table rbac.yaml's
// comment points to).
func rbacCases() []rbacCase {
	return []rbacCase{
		{rule: 0, group: "coordination.k8s.io", resource: "leases", verb: "get", layout: sentinel3,
			step: "cold-start election reads the Lease (master of record) before deciding", failed: noMaster},
		{rule: 0, group: "coordination.k8s.io", resource: "leases", verb: "update", layout: sentinel3,
			step: "master of record renews the Lease it created", failed: leaseNeverRenewed},
		{rule: 0, group: "coordination.k8s.io", resource: "leases", verb: "watch", layout: sentinel3,
			step: "agents watch the Lease to follow a new holder at once", failed: refusalLogged},
		{rule: 1, group: "coordination.k8s.io", resource: "leases", verb: "create", layout: sentinel3,
			step: "cold-start election creates the Lease", failed: noLeaseNoMaster},
		{rule: 2, group: "apps", resource: "statefulsets", verb: "get", layout: sentinel3,
			step: "agent-init reads spec.replicas (the expected pods)", failed: noPodStartsRedis},
		{rule: 3, group: "", resource: "pods", verb: "get", layout: sentinel3, exercise: switchoverWithoutPeerDNS,
			step: "preStop switchover of the master while peer DNS names do not answer: it reads its own pod (only a deletion starts it) and reaches peers by their pod IP from the API", failed: noSwitchover},
		{rule: 3, group: "", resource: "pods", verb: "list", layout: cluster6,
			step: "coordinator lists the pods for their nodes, to put each replica on another node than its master", failed: placementUnknown},
		{rule: 3, group: "", resource: "pods", verb: "list", layout: sentinel3,
			step: "elected master lists the pods labelled master before labelling itself", failed: noMaster},
		{rule: 3, group: "", resource: "pods", verb: "patch", layout: sentinel3,
			step: "elected master labels itself redis-ha-agent/role=master (redis-master Service)", failed: noMaster},
		{rule: 4, group: "events.k8s.io", resource: "events", verb: "create", layout: sentinel3,
			step: "every decision is recorded as an Event", failed: noAgentEvents},
		{rule: 4, group: "events.k8s.io", resource: "events", verb: "patch", layout: cluster6,
			step: "a repeated Event (NodeMet on one pod) updates its series", failed: noEventSeries},
	}
}

// TestRBACRuleIsNeeded: removing any single verb from the shipped Role
// makes the named agent step fail, and the agent's logs carry the API
// server's refusal naming that verb and resource. Every verb of every rule
// must have a case, so a permission added without a step that needs it
// fails here.
func TestRBACRuleIsNeeded(t *testing.T) {
	cases := rbacCases()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	role := find(t, kustomize(t, ctx, manifestsDir+"/"+sentinel3.overlay), "Role", "")
	cancel()
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for i, r := range rules {
		verbs, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "verbs")
		groups, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "apiGroups")
		resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
		for _, v := range verbs {
			covered := false
			for _, c := range cases {
				covered = covered || (c.rule == i && c.verb == v && len(groups) == 1 && c.group == groups[0] && len(resources) == 1 && c.resource == resources[0])
			}
			if !covered {
				t.Errorf("Role rule %d %v %v verb %q has no case in rbacCases: add the step that needs it, or remove the verb", i, groups, resources, v)
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name()+"/"+strings.TrimPrefix(c.layout.overlay, "overlays/"), func(t *testing.T) { runRBACCase(t, c) })
	}
}

func runRBACCase(t *testing.T, c rbacCase) {
	// The full Role brings sentinel-3 up in 10-20 s and cluster-6 in about
	// 15 s on this machine: by settle, the step has had its chance.
	const settle, window = 35 * time.Second, 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	objs := kustomize(t, ctx, manifestsDir+"/"+c.layout.overlay)
	removeVerb(t, objs, c.rule, c.verb)
	ns := newNamespace(t, ctx, "rbac")
	if err := newApplier(t).apply(ctx, ns, objs, false); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	if c.exercise != nil {
		if _, last, err := pollPods(ctx, ns, c.layout.selector, c.layout.pods, nil, 90*time.Second); err != nil {
			logs, _ := agentLogs(ctx, ns, c.layout.selector)
			t.Fatalf("without %s on %s the layout must still come up before the step is exercised: %v (last: %s)\n%s", c.verb, c.resource, err, last, tail(logs, 40))
		}
		c.exercise(t, ctx, ns)
		applied = time.Now()
	}
	var hit []string
	for time.Since(applied) < window {
		logs, err := agentLogs(ctx, ns, c.layout.selector)
		if err == nil {
			hit = grepLines(strings.ReplaceAll(logs, `\"`, `"`), c.refusal())
		}
		if len(hit) > 0 && time.Since(applied) >= settle {
			break
		}
		time.Sleep(500 * time.Millisecond) // poll interval, bounded by window
	}
	failed, detail := c.failed(ctx, ns)
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case len(hit) == 0:
		logs, _ := agentLogs(ctx, ns, c.layout.selector)
		t.Errorf("without %s on %s: no agent log line carries the refusal %q within %s (step %q failed=%v: %s); the agent must log the API error of the call this step makes instead of dropping it\n%s\nagent logs:\n%s",
			c.verb, c.resource, c.refusal(), window, c.step, failed, detail, podSummary(ctx, ns, c.layout.selector), tail(logs, 60))
	case !failed:
		t.Errorf("without %s on %s: step %q still succeeded (%s), yet the agent logged %q", c.verb, c.resource, c.step, detail, hit[0])
	default:
		t.Logf("without %s on %s (%s): step %q failed: %s; agent logged (%d lines): %s [%s]", c.verb, c.resource, c.layout.overlay, c.step, detail, len(hit), clip(hit[0], 400), took)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// switchoverWithoutPeerDNS removes the headless Service, so that no peer
// DNS name answers any more (the API still does), and deletes the master:
// its preStop switchover must reach the replicas through their pod IPs.
func switchoverWithoutPeerDNS(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	if err := cluster.Clientset.CoreV1().Services(ns).Delete(ctx, "redis-headless", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete the headless Service: %v", err)
	}
	name := "redis-1.redis-headless." + ns + ".svc.cluster.local"
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.Resolver.LookupHost(ctx, name)
		return err != nil, nil
	}); err != nil {
		t.Fatalf("%s still resolves 30s after the headless Service was deleted", name)
	}
	deleteMaster(t, ctx, ns)
}

// deleteMaster deletes the pod labelled master gracefully: its preStop
// hook runs the planned switchover.
func deleteMaster(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	m, err := podsWithLabel(ctx, ns, sentinelSelector, roleLabel, "master")
	if err != nil || len(m) != 1 {
		t.Fatalf("pods labelled master: %v, %v; want one to delete", m, err)
	}
	if err := cluster.DeletePod(ctx, ns, m[0]); err != nil {
		t.Fatal(err)
	}
}

// The step checks. Each returns true when the step's effect is missing.

func noSwitchover(ctx context.Context, ns string) (bool, string) {
	reasons, _, err := agentEvents(ctx, ns)
	if err != nil {
		return false, err.Error()
	}
	detail := fmt.Sprintf("agent Events %v", reasons)
	if l, err := cluster.Clientset.EventsV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range l.Items {
			if e.Reason == "SwitchoverFailed" {
				detail += fmt.Sprintf("; SwitchoverFailed on %s: %s", e.Regarding.Name, e.Note)
			}
		}
	}
	return reasons["SwitchoverCompleted"] == 0, detail
}

func noMaster(ctx context.Context, ns string) (bool, string) {
	m, err := podsWithLabel(ctx, ns, sentinelSelector, roleLabel, "master")
	if err != nil {
		return false, err.Error()
	}
	return len(m) == 0, fmt.Sprintf("pods labelled master: %v", m)
}

func noLeaseNoMaster(ctx context.Context, ns string) (bool, string) {
	_, err := cluster.Clientset.CoordinationV1().Leases(ns).Get(ctx, "redis", metav1.GetOptions{})
	gone := apierrors.IsNotFound(err)
	nm, detail := noMaster(ctx, ns)
	return gone && nm, fmt.Sprintf("Lease redis absent=%v (%v); %s", gone, err, detail)
}

func leaseNeverRenewed(ctx context.Context, ns string) (bool, string) {
	l, err := cluster.Clientset.CoordinationV1().Leases(ns).Get(ctx, "redis", metav1.GetOptions{})
	if err != nil {
		return false, fmt.Sprintf("Lease redis: %v", err)
	}
	acq, ren := l.Spec.AcquireTime, l.Spec.RenewTime
	never := acq != nil && ren != nil && !ren.After(acq.Time)
	return never, fmt.Sprintf("Lease redis holder %q acquired %v, last renewed %v (RetryPeriod 2s)", ptr.Deref(l.Spec.HolderIdentity, ""), acq, ren)
}

// refusalLogged: the step has no other effect a cold start can show; the
// agent's logged refusal is the failure.
func refusalLogged(context.Context, string) (bool, string) {
	return true, "the watch is refused"
}

func noPodStartsRedis(ctx context.Context, ns string) (bool, string) {
	l, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sentinelSelector})
	if err != nil {
		return false, err.Error()
	}
	for _, p := range l.Items {
		for _, s := range p.Status.ContainerStatuses {
			if s.Name == "redis" && (s.State.Running != nil || s.State.Terminated != nil) {
				return false, "redis started in " + p.Name
			}
		}
	}
	return true, "no pod got past agent-init: " + podSummary(ctx, ns, sentinelSelector)
}

// placementUnknown: cluster mode degrades instead of stopping (the
// cluster is still created), so the failed step is the one the agent
// reports skipping: placing replicas by node.
func placementUnknown(ctx context.Context, ns string) (bool, string) {
	logs, err := agentLogs(ctx, ns, clusterSelector)
	if err != nil {
		return false, err.Error()
	}
	n := len(grepLines(logs, "pod placement unknown; replicas are placed without it"))
	return n > 0, fmt.Sprintf("%d agent log lines say \"pod placement unknown; replicas are placed without it\"", n)
}

func noAgentEvents(ctx context.Context, ns string) (bool, string) {
	reasons, _, err := agentEvents(ctx, ns)
	if err != nil {
		return false, err.Error()
	}
	nm, detail := noMaster(ctx, ns)
	return len(reasons) == 0, fmt.Sprintf("agent Events: %v (the election itself went on: master elected=%v, %s)", reasons, !nm, detail)
}

func noEventSeries(ctx context.Context, ns string) (bool, string) {
	reasons, series, err := agentEvents(ctx, ns)
	if err != nil {
		return false, err.Error()
	}
	return series == 0 && reasons["NodeMet"] > 0, fmt.Sprintf("agent Events %v, %d with a series", reasons, series)
}
