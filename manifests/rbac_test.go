package manifests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
)

// wantRules is the agent's whole permission set, in rbac.yaml's order: the
// API calls the agent makes (agent/sentinel/lease.go,
// agent/sentinel/replicas.go, agent/sidecar/topology.go, agent/cluster/kube.go,
// client-go tools/events) and nothing else. A new
// permission must be added here on purpose.
func wantRules(sts string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{sts}, Verbs: []string{"get", "update", "watch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, ResourceNames: []string{sts}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

func TestRBAC(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		if !l.sidecar && l.init != "init" {
			// The update-node.sh drop-in reads a file and DNS only.
			if len(b.roles)+len(b.roleBindings)+len(b.serviceAccounts) > 0 {
				t.Errorf("init-only build grants API access it does not use: %d Roles, %d RoleBindings, %d ServiceAccounts", len(b.roles), len(b.roleBindings), len(b.serviceAccounts))
			}
			return
		}
		// resourceNames hold the StatefulSet's name, which is also the Lease's
		// name only while the agent keeps its defaults.
		for _, c := range allContainers(spec) {
			for _, e := range c.Env {
				if (e.Name == "REDIS_HA_LEASE_NAME" || e.Name == "REDIS_HA_STATEFULSET") && e.Value != b.sts.Name {
					t.Errorf("container %s sets %s=%q: the Role only grants the Lease and StatefulSet named %q", c.Name, e.Name, e.Value, b.sts.Name)
				}
			}
		}
		saName := b.sts.Name + "-ha-agent"
		if spec.ServiceAccountName != saName {
			t.Errorf("pod serviceAccountName %q, want %q", spec.ServiceAccountName, saName)
		}
		if _, ok := b.serviceAccounts[saName]; !ok || len(b.serviceAccounts) != 1 {
			t.Errorf("ServiceAccounts %v, want exactly %s", keys(b.serviceAccounts), saName)
		}
		role, ok := b.roles[saName]
		if !ok || len(b.roles) != 1 {
			t.Fatalf("Roles %v, want exactly %s (and no ClusterRole)", keys(b.roles), saName)
		}
		if diff := cmp.Diff(wantRules(b.sts.Name), role.Rules); diff != "" {
			t.Errorf("Role %s rules differ from the agent's needs (-want +got):\n%s", role.Name, diff)
		}
		rb, ok := b.roleBindings[saName]
		if !ok || len(b.roleBindings) != 1 {
			t.Fatalf("RoleBindings %v, want exactly %s", keys(b.roleBindings), saName)
		}
		wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: saName}
		wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: saName}}
		if diff := cmp.Diff(wantRef, rb.RoleRef); diff != "" {
			t.Errorf("RoleBinding roleRef (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantSubjects, rb.Subjects); diff != "" {
			t.Errorf("RoleBinding subjects (-want +got):\n%s", diff)
		}
	})
}
