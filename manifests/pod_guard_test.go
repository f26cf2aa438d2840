package manifests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

const (
	// podGuard names the ValidatingAdmissionPolicy of components/pod-guard
	// and its binding.
	podGuard     = "redis-ha-agent-pod-guard"
	podGuardFile = "components/pod-guard/pod-guard.yaml"
	// agentSuffix ends every agent ServiceAccount's name (components/rbac);
	// the policy finds the StatefulSet by cutting it off.
	agentSuffix = "-ha-agent"
)

// readPodGuard decodes the component's file as it is, before any build.
func readPodGuard(t *testing.T) (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	src, err := os.ReadFile(podGuardFile)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(src), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%s holds %d documents, want the policy and its binding", podGuardFile, len(docs))
	}
	p, b := &admissionv1.ValidatingAdmissionPolicy{}, &admissionv1.ValidatingAdmissionPolicyBinding{}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), p); err != nil {
		t.Fatalf("%s: the policy does not decode strictly: %v", podGuardFile, err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), b); err != nil {
		t.Fatalf("%s: the binding does not decode strictly: %v", podGuardFile, err)
	}
	return p, b
}

// TestPodGuardPolicy: the policy is generic (no parameters, every
// namespace), refuses (Deny, Fail), and agrees with components/rbac on the
// ServiceAccount's name and with the agent on the role label.
func TestPodGuardPolicy(t *testing.T) {
	p, b := readPodGuard(t)
	if p.Name != podGuard || b.Name != podGuard || b.Spec.PolicyName != podGuard {
		t.Errorf("policy %q, binding %q for policy %q; want all %q", p.Name, b.Name, b.Spec.PolicyName, podGuard)
	}
	if diff := cmp.Diff([]admissionv1.ValidationAction{admissionv1.Deny}, b.Spec.ValidationActions); diff != "" {
		t.Errorf("binding validationActions (-want +got):\n%s", diff)
	}
	if b.Spec.MatchResources != nil || b.Spec.ParamRef != nil || p.Spec.ParamKind != nil {
		t.Errorf("binding matchResources %v, paramRef %v, policy paramKind %v: the guard is one object for every install, with no parameters and every namespace", b.Spec.MatchResources, b.Spec.ParamRef, p.Spec.ParamKind)
	}
	if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionv1.Fail {
		t.Errorf("failurePolicy %v, want Fail: an expression that cannot be evaluated must not let a patch through", p.Spec.FailurePolicy)
	}
	wantRules := []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
		Operations: []admissionv1.OperationType{admissionv1.Update},
		Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}}
	if p.Spec.MatchConstraints == nil {
		t.Fatal("policy has no matchConstraints")
	}
	if diff := cmp.Diff(wantRules, p.Spec.MatchConstraints.ResourceRules); diff != "" {
		t.Errorf("policy resourceRules (-want +got), want updates of pods (the Role's patch):\n%s", diff)
	}
	var match string
	for _, c := range p.Spec.MatchConditions {
		match += c.Expression
	}
	vars := map[string]string{}
	for _, v := range p.Spec.Variables {
		vars[v.Name] = v.Expression
	}
	if !strings.Contains(match, `endsWith("`+agentSuffix+`")`) || !strings.Contains(vars["statefulSet"], `size("`+agentSuffix+`")`) {
		t.Errorf("matchConditions %q and variable statefulSet %q must select and cut the suffix %q of components/rbac's ServiceAccount names", match, vars["statefulSet"], agentSuffix)
	}
	if want := "'" + roleLabel + "'"; vars["roleLabel"] != want {
		t.Errorf("variable roleLabel = %s, want %s (the agent's --role-label default)", vars["roleLabel"], want)
	}
	for i, v := range p.Spec.Validations {
		if v.Message == "" || v.MessageExpression == "" || v.Reason == nil || *v.Reason != "Forbidden" {
			t.Errorf("validation %d (%s): message %q, messageExpression %q, reason %v; want both messages and reason Forbidden", i, v.Expression, v.Message, v.MessageExpression, v.Reason)
		}
	}
}

// TestPodGuardInBuilds: every build that gives the agent a token carries
// the pod guard exactly as components/pod-guard holds it (one object for
// every install, untouched by the build), and the init-only build, with no
// token, does not.
func TestPodGuardInBuilds(t *testing.T) {
	wantPolicy, wantBinding := readPodGuard(t)
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		if !l.sidecar {
			if len(b.policies)+len(b.policyBindings) > 0 {
				t.Errorf("build without the agent's token carries %d admission policies and %d bindings", len(b.policies), len(b.policyBindings))
			}
			return
		}
		if len(b.policies) != 1 || len(b.policyBindings) != 1 {
			t.Fatalf("%d ValidatingAdmissionPolicies %v and %d bindings %v, want %s once each (components/pod-guard beside components/rbac)", len(b.policies), keys(b.policies), len(b.policyBindings), keys(b.policyBindings), podGuard)
		}
		if diff := cmp.Diff(wantPolicy, b.policies[podGuard]); diff != "" {
			t.Errorf("policy differs from %s (-file +build):\n%s", podGuardFile, diff)
		}
		if diff := cmp.Diff(wantBinding, b.policyBindings[podGuard]); diff != "" {
			t.Errorf("binding differs from %s (-file +build):\n%s", podGuardFile, diff)
		}
		if sa := b.sts.Spec.Template.Spec.ServiceAccountName; !strings.HasSuffix(sa, agentSuffix) || strings.TrimSuffix(sa, agentSuffix) != b.sts.Name {
			t.Errorf("pods run as ServiceAccount %q: the pod guard admits %q only on pods of StatefulSet %q", sa, sa, strings.TrimSuffix(sa, agentSuffix))
		}
	})
}

// TestPodGuardCanBeLeftOut: the patches README.md gives for an install
// without cluster-admin remove the policy and its binding and nothing else.
func TestPodGuardCanBeLeftOut(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- pod-guard-leave-out -->\n```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("manifests/README.md has no ```yaml block after <!-- pod-guard-leave-out -->")
	}
	const overlay = "overlays/sentinel-3"
	dir := t.TempDir()
	abs, err := filepath.Abs(overlay)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs) // kustomize refuses absolute paths
	if err != nil {
		t.Fatal(err)
	}
	k := "resources:\n  - " + filepath.ToSlash(rel) + "\n" + string(m[1])
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	full, without := kustomize(t, overlay), kustomize(t, dir)
	if len(without.policies)+len(without.policyBindings) > 0 {
		t.Errorf("with README's patches the build still has policies %v and bindings %v", keys(without.policies), keys(without.policyBindings))
	}
	full.policies, full.policyBindings, full.dir = without.policies, without.policyBindings, without.dir
	if diff := cmp.Diff(full, without, cmp.AllowUnexported(built{})); diff != "" {
		t.Errorf("README's patches change more than the pod guard (-%s +patched):\n%s", overlay, diff)
	}
}
