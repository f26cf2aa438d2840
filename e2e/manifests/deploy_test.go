package manifests

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// removeVerb drops one verb from rule i of the build's Role (and the rule,
// when no verb is left): the Role a case runs with.
func removeVerb(t *testing.T, objs []*unstructured.Unstructured, rule int, verb string) {
	t.Helper()
	role := find(t, objs, "Role", "")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	if rule >= len(rules) {
		t.Fatalf("Role %s has %d rules, no rule %d", role.GetName(), len(rules), rule)
	}
	r := rules[rule].(map[string]any)
	verbs, _, _ := unstructured.NestedStringSlice(r, "verbs")
	i := slices.Index(verbs, verb)
	if i < 0 {
		t.Fatalf("rule %d of Role %s (%s) has no verb %q", rule, role.GetName(), toJSON(r), verb)
	}
	verbs = slices.Delete(verbs, i, i+1)
	if len(verbs) == 0 {
		rules = slices.Delete(rules, rule, rule+1)
	} else {
		if err := unstructured.SetNestedStringSlice(r, verbs, "verbs"); err != nil {
			t.Fatal(err)
		}
		rules[rule] = r
	}
	if err := unstructured.SetNestedSlice(role.Object, rules, "rules"); err != nil {
		t.Fatal(err)
	}
}

// agentLogs concatenates the agent containers' logs (init and sidecar) of
// every pod of the StatefulSet's current incarnation, each line prefixed
// with pod/container.
func agentLogs(ctx context.Context, ns, selector string) (string, error) {
	l, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i := range l.Items {
		p := &l.Items[i]
		for _, c := range p.Spec.InitContainers {
			if !strings.Contains(c.Image, "redis-ha-agent") {
				continue
			}
			for _, line := range strings.Split(containerLog(ns, p, c.Name), "\n") {
				if line != "" {
					fmt.Fprintf(&b, "%s/%s: %s\n", p.Name, c.Name, line)
				}
			}
		}
	}
	return b.String(), nil
}

// grepLines returns the lines of log containing sub.
func grepLines(log, sub string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// podsWithLabel lists the StatefulSet's pods carrying label=value.
func podsWithLabel(ctx context.Context, ns, selector, label, value string) ([]string, error) {
	l, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector + "," + label + "=" + value})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names, nil
}

// podSummary is for failure messages: phase, readiness and container states.
func podSummary(ctx context.Context, ns, selector string) string {
	l, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, p := range l.Items {
		var cs []string
		for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			st := "waiting"
			switch {
			case s.State.Running != nil:
				st = "running"
			case s.State.Terminated != nil:
				st = fmt.Sprintf("exited(%d)", s.State.Terminated.ExitCode)
			}
			cs = append(cs, fmt.Sprintf("%s=%s/r%d", s.Name, st, s.RestartCount))
		}
		parts = append(parts, fmt.Sprintf("%s %s ready=%v labels=%v [%s]", p.Name, p.Status.Phase, podReady(&p), p.Labels, strings.Join(cs, " ")))
	}
	return strings.Join(parts, "; ")
}

// agentEvents lists the events.k8s.io Events the agent reported in ns:
// reason -> count, and how many of them carry a series (a repeat patched
// onto the first Event).
func agentEvents(ctx context.Context, ns string) (reasons map[string]int, series int, err error) {
	l, err := cluster.Clientset.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	reasons = map[string]int{}
	for _, e := range l.Items {
		if e.ReportingController != "redis-ha-agent" {
			continue
		}
		reasons[e.Reason]++
		if e.Series != nil && e.Series.Count >= 2 {
			series++
		}
	}
	return reasons, series, nil
}
