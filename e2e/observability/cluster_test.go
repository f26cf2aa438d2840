package observability

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/demo"
	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// TestCluster deploys manifests/overlays/cluster-6 and checks what an
// operator sees once the agents created the cluster: the ClusterCreated
// Event with its reason, `status -o json` against CLUSTER INFO / CLUSTER
// NODES / INFO replication on every pod, and /metrics.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const ns, sts, pods = "obs-cluster", "redis-cluster", 6
	if err := env.Deploy(ctx, ns, filepath.Join(env.RepoRoot, "manifests", "overlays", "cluster-6")); err != nil {
		t.Fatal(err)
	}
	view, err := env.WaitCluster(ctx, ns, sts, pods, 4*time.Minute)
	if err != nil {
		t.Fatalf("%v\n(pod logs: %s)", err, localkube.PodLogDirs(env.StateDir))
	}
	t.Logf("masters %v, replicas %v", view.Masters, view.Replicas)
	lease, err := env.Kube.CoordinationV1().Leases(ns).Get(ctx, sts, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		t.Fatalf("Lease %s/%s (the coordinator): %v", ns, sts, err)
	}
	coordinator := *lease.Spec.HolderIdentity

	t.Run("ClusterCreated event with its reason", func(t *testing.T) {
		evs, err := env.AgentEvents(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs {
			t.Logf("event %s %s: %s", ev.Object, ev.Reason, ev.Note)
			if ev.Reason == "ClusterCreated" {
				found = true
				if ev.Object != coordinator {
					t.Errorf("ClusterCreated reported on %s, want the coordinator (Lease holder) %s", ev.Object, coordinator)
				}
				if !strings.Contains(ev.Note, "cluster_state:ok") {
					t.Errorf("ClusterCreated note %q does not say why the cluster counts as created", ev.Note)
				}
			}
		}
		if !found {
			t.Fatalf("no ClusterCreated event in %s (events.k8s.io/v1, reportingController redis-ha-agent)", ns)
		}
		out, err := env.Kubectl(ctx, "get", "events", "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "ClusterCreated") {
			t.Errorf("kubectl get events -n %s does not show ClusterCreated:\n%s", ns, out)
		}
	})

	t.Run("status matches Redis", func(t *testing.T) {
		rep, raw, err := env.StatusJSON(ctx, ns, sts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("status -o json:\n%s", raw)
		if len(rep.Pods) != pods {
			t.Fatalf("status lists %d pods, want %d", len(rep.Pods), pods)
		}
		for _, sp := range rep.Pods {
			if sp.AgentError != "" || sp.Agent == nil {
				t.Errorf("%s: status could not read the agent: %s", sp.Pod, sp.AgentError)
				continue
			}
			c := env.NewClient(net.JoinHostPort(sp.IP, "6379"))
			info, err := c.ClusterInfo(ctx).Result()
			var nodes string
			if err == nil {
				nodes, err = c.ClusterNodes(ctx).Result()
			}
			c.Close()
			if err != nil {
				t.Fatalf("%s: %v", sp.Pod, err)
			}
			repl, err := env.ReplicationAt(ctx, net.JoinHostPort(sp.IP, "6379"))
			if err != nil {
				t.Fatalf("%s: %v", sp.Pod, err)
			}
			if got, want := fmt.Sprint(sp.Agent["role"]), statusRole(repl.Role); got != want {
				t.Errorf("%s: status role %q, Redis says role:%s", sp.Pod, got, repl.Role)
			}
			if got, want := fmt.Sprint(sp.Agent["clusterState"]), demo.ParseInfoField(info, "cluster_state"); got != want {
				t.Errorf("%s: status clusterState %q, CLUSTER INFO says cluster_state:%s", sp.Pod, got, want)
			}
			if sp.LeaseHolder != (sp.Pod == coordinator) {
				t.Errorf("%s: status leaseHolder %v, Lease holder is %s", sp.Pod, sp.LeaseHolder, coordinator)
			}
			if !sp.Ready {
				t.Errorf("%s: status says not Ready", sp.Pod)
			}
			// Issue #7: status shows each master's slots.
			if repl.Role == "master" {
				want := mySlots(nodes)
				got, ok := sp.Agent["slots"]
				if !ok {
					t.Errorf("%s: status -o json has no slots for this master; CLUSTER NODES says it serves %s", sp.Pod, strings.Join(want, " "))
					continue
				}
				for _, r := range want {
					if !strings.Contains(fmt.Sprint(got), r) {
						t.Errorf("%s: status slots %v lack %s (CLUSTER NODES: %s)", sp.Pod, got, r, strings.Join(want, " "))
					}
				}
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		ps, err := env.Pods(ctx, ns, sts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			repl, err := env.ReplicationAt(ctx, net.JoinHostPort(p.Status.PodIP, "6379"))
			if err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			expectMetrics(ctx, t, p.Name, p.Status.PodIP, 15*time.Second, []expectation{
				{"redis_ha_agent_cluster_state_ok", nil, eq(1), "1"},
				{"redis_ha_agent_role", []string{"role", statusRole(repl.Role)}, eq(1), "1 (INFO replication role:" + repl.Role + ")"},
				{"redis_ha_agent_build_info", []string{"mode", "cluster"}, eq(1), "1"},
			})
		}
	})
}

func statusRole(redisRole string) string {
	if redisRole == "slave" {
		return "replica"
	}
	return redisRole
}

// mySlots returns the slot ranges on CLUSTER NODES' myself line.
func mySlots(nodes string) []string {
	for _, l := range strings.Split(nodes, "\n") {
		f := strings.Fields(l)
		if len(f) > 8 && strings.Contains(f[2], "myself") {
			return f[8:]
		}
	}
	return nil
}
