package manifests

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// roleLabel is the agent's default --role-label; Services select on it.
const roleLabel = "redis-ha-agent/role"

// selects reports whether a Service selector picks the StatefulSet's pods,
// given the role label the agent puts on them at run time.
func selects(selector map[string]string, pod map[string]string, role string) bool {
	withRole := labels.Set{}
	for k, v := range pod {
		withRole[k] = v
	}
	if role != "" {
		withRole[roleLabel] = role
	}
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(withRole)
}

// TestServices checks the Services and the PodDisruptionBudget of the bases.
func TestServices(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		if !l.services {
			return
		}
		podLabels := b.sts.Spec.Template.Labels
		if _, ok := podLabels[roleLabel]; ok {
			t.Errorf("pod template sets %s: the agent owns that label", roleLabel)
		}
		if _, ok := b.sts.Spec.Selector.MatchLabels[roleLabel]; ok {
			t.Errorf("StatefulSet selector uses %s, which changes at run time", roleLabel)
		}
		headless, ok := b.services[b.sts.Spec.ServiceName]
		switch {
		case !ok:
			t.Fatalf("StatefulSet serviceName %q has no Service in the build", b.sts.Spec.ServiceName)
		case headless.Spec.ClusterIP != corev1.ClusterIPNone:
			t.Errorf("Service %s is the StatefulSet's serviceName but not headless (clusterIP %q): pods get no DNS names", headless.Name, headless.Spec.ClusterIP)
		case !headless.Spec.PublishNotReadyAddresses:
			t.Errorf("Service %s does not publish not-ready addresses: peers cannot find a pod before it is ready", headless.Name)
		}
		want := map[string]string{b.sts.Spec.ServiceName: ""}
		if l.mode == "sentinel" {
			want[b.sts.Name+"-master"] = "master"
			want[b.sts.Name+"-replicas"] = "replica"
			want[b.sts.Name+"-sentinel"] = ""
		} else {
			want[b.sts.Name] = ""
		}
		for name, role := range want {
			svc, ok := b.services[name]
			if !ok {
				t.Errorf("no Service %s", name)
				continue
			}
			if !selects(svc.Spec.Selector, podLabels, role) {
				t.Errorf("Service %s selector %v does not select the pods (labels %v, role %q)", name, svc.Spec.Selector, podLabels, role)
			}
			if role != "" {
				other := map[string]string{"master": "replica", "replica": "master"}[role]
				if svc.Spec.Selector[roleLabel] != role || selects(svc.Spec.Selector, podLabels, other) || selects(svc.Spec.Selector, podLabels, "") {
					t.Errorf("Service %s selector %v must select only pods labelled %s=%s", name, svc.Spec.Selector, roleLabel, role)
				}
			}
			for _, p := range svc.Spec.Ports {
				if !targetsContainerPort(&b.sts.Spec.Template.Spec, p.TargetPort) {
					t.Errorf("Service %s port %s targets %s, which no container declares", name, p.Name, p.TargetPort.String())
				}
			}
		}
		external := map[string]bool{}
		if l.external { // checked by TestExternalAccess
			for i := int32(0); i < l.replicas; i++ {
				external[fmt.Sprintf("%s-%d-external", b.sts.Name, i)] = true
			}
		}
		for name := range b.services {
			if _, ok := want[name]; !ok && !external[name] {
				t.Errorf("unexpected Service %s", name)
			}
		}
		if len(b.pdbs) != 1 {
			t.Fatalf("%d PodDisruptionBudgets, want 1", len(b.pdbs))
		}
		pdb := b.pdbs[0]
		if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %v minAvailable %v, want maxUnavailable 1 only", pdb.Name, pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
		}
		if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, podLabels, "") || len(pdb.Spec.Selector.MatchExpressions) > 0 {
			t.Errorf("PodDisruptionBudget %s selector %v does not select the pods %v", pdb.Name, pdb.Spec.Selector, podLabels)
		}
	})
}

func targetsContainerPort(spec *corev1.PodSpec, target intstr.IntOrString) bool {
	for _, c := range allContainers(spec) {
		for _, p := range c.Ports {
			if (target.Type == intstr.String && p.Name == target.StrVal) || (target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
				return true
			}
		}
	}
	return false
}
