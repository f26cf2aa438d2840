package observability

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/demo"
	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// TestSentinel deploys manifests/overlays/sentinel-3, checks `status -o
// json` against Redis, makes Sentinel fail over (the master's processes are
// frozen past down-after, like a hung node), and checks what an operator
// sees afterwards: the new master's /metrics, the Events, and status again.
func TestSentinel(t *testing.T) {
	cluster.NeedsLocalNodes(t, "freeze")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const ns, sts = "obs-sentinel", "redis"
	if err := env.Deploy(ctx, ns, filepath.Join(env.RepoRoot, "manifests", "overlays", "sentinel-3")); err != nil {
		t.Fatal(err)
	}
	master, err := env.WaitSentinel(ctx, ns, sts, 3, 4*time.Minute)
	if err != nil {
		t.Fatalf("%v\n(pod logs: %s)", err, localkube.PodLogDirs(env.StateDir))
	}
	t.Logf("master before the failover: %s", master)
	t.Run("status matches Redis", func(t *testing.T) { checkSentinelStatus(ctx, t, ns, sts, master) })

	t0 := time.Now()
	if err := cluster.Freeze(ns, master); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := cluster.Thaw(ns, master); err != nil {
				t.Errorf("thaw %s: %v", master, err)
			}
		}
	}
	defer thaw()
	var newMaster string
	err = pollUntil(ctx, 90*time.Second, func() error {
		pods, err := env.Pods(ctx, ns, sts)
		if err != nil {
			return err
		}
		for i := range pods {
			p := &pods[i]
			if p.Name != master && p.Labels[demo.RoleLabel] == "master" && demo.PodReady(p) {
				newMaster = p.Name
				return nil
			}
		}
		return fmt.Errorf("no pod other than the frozen %s is labelled master and Ready", master)
	})
	if err != nil {
		t.Fatalf("Sentinel failover away from frozen %s: %v", master, err)
	}
	t.Logf("%s labelled master %s after freezing %s", newMaster, time.Since(t0).Round(time.Millisecond), master)
	thaw()
	final, err := env.WaitSentinel(ctx, ns, sts, 3, 3*time.Minute)
	if err != nil {
		t.Fatalf("after thawing %s: %v", master, err)
	}
	if final != newMaster {
		t.Errorf("master after the old one came back: %s, want %s (it was labelled master during the failover)", final, newMaster)
	}

	t.Run("metrics on the new master", func(t *testing.T) {
		pods, err := env.Pods(ctx, ns, sts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			if p.Name == final {
				expectMetrics(ctx, t, p.Name, p.Status.PodIP, 15*time.Second, []expectation{
					{"redis_ha_agent_role", []string{"role", "master"}, eq(1), "1"},
					{"redis_ha_agent_lease_holder", nil, eq(1), "1"},
					{"redis_ha_agent_master_of_record", nil, eq(1), "1"},
					{"redis_ha_agent_lease_transitions_total", nil, gt(0), "> 0 (it took the Lease over)"},
					{"redis_ha_agent_failovers_total", nil, gt(0), "> 0 (it saw the failover)"},
					{"redis_ha_agent_last_failover_duration_seconds", nil, gt(0), "> 0"},
				})
				continue
			}
			expectMetrics(ctx, t, p.Name, p.Status.PodIP, 15*time.Second, []expectation{
				{"redis_ha_agent_role", []string{"role", "replica"}, eq(1), "1"},
				{"redis_ha_agent_lease_holder", nil, eq(0), "0"},
			})
		}
	})

	t.Run("events hold the decision with its reason", func(t *testing.T) {
		evs, err := env.AgentEvents(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		var decision *demo.AgentEvent
		for i, ev := range evs {
			t.Logf("event %s %s %s: %s", ev.Time.Format(time.RFC3339Nano), ev.Object, ev.Reason, ev.Note)
			if ev.Object == final && (ev.Reason == "LeaseAcquired" || ev.Reason == "Promoted") && !ev.Time.Time.Before(t0.Add(-time.Second)) {
				decision = &evs[i]
			}
		}
		if decision == nil {
			t.Fatalf("no LeaseAcquired/Promoted event for the new master %s since the failover in %s (events.k8s.io/v1, reportingController redis-ha-agent)", final, ns)
		}
		_, why, ok := strings.Cut(decision.Note, ": ")
		if !ok || strings.TrimSpace(why) == "" {
			t.Errorf("event %s on %s has no reason in its note %q", decision.Reason, final, decision.Note)
		}
		out, err := env.Kubectl(ctx, "get", "events", "-n", ns, "--field-selector", "involvedObject.name="+final)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, decision.Reason) || !strings.Contains(out, why) {
			t.Errorf("kubectl get events -n %s does not show %s with %q:\n%s", ns, decision.Reason, why, out)
		}
	})

	t.Run("status matches Redis after the failover", func(t *testing.T) { checkSentinelStatus(ctx, t, ns, sts, final) })
}

// checkSentinelStatus runs `redis-ha-agent status -o json` between two
// reads of INFO replication on every pod and checks that status says what
// Redis says: role, replication ID, and an offset between the two reads.
func checkSentinelStatus(ctx context.Context, t *testing.T, ns, sts, master string) {
	t.Helper()
	pods, err := env.Pods(ctx, ns, sts)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]demo.Replication{}
	for _, p := range pods {
		r, err := env.ReplicationAt(ctx, net.JoinHostPort(p.Status.PodIP, "6379"))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		before[p.Name] = r
	}
	rep, raw, err := env.StatusJSON(ctx, ns, sts)
	if err != nil {
		t.Fatal(err)
	}
	after := map[string]demo.Replication{}
	for _, p := range pods {
		r, err := env.ReplicationAt(ctx, net.JoinHostPort(p.Status.PodIP, "6379"))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		after[p.Name] = r
	}
	t.Logf("status -o json:\n%s", raw)
	if rep.Lease == nil || rep.Lease.Holder != master {
		t.Errorf("status: Lease %+v, want holder %s", rep.Lease, master)
	}
	if len(rep.Pods) != len(pods) {
		t.Fatalf("status lists %d pods, want %d", len(rep.Pods), len(pods))
	}
	for _, sp := range rep.Pods {
		b, a := before[sp.Pod], after[sp.Pod]
		if sp.AgentError != "" || sp.Agent == nil {
			t.Errorf("%s: status could not read the agent: %s", sp.Pod, sp.AgentError)
			continue
		}
		wantRole, wantLabel := "replica", "replica"
		if sp.Pod == master {
			wantRole, wantLabel = "master", "master"
		}
		if b.Role != redisRole(wantRole) || a.Role != b.Role {
			t.Errorf("%s: Redis says role:%s then role:%s, want %s (test setup)", sp.Pod, b.Role, a.Role, redisRole(wantRole))
		}
		if got := fmt.Sprint(sp.Agent["role"]); got != wantRole {
			t.Errorf("%s: status role %q, Redis says role:%s", sp.Pod, got, b.Role)
		}
		if sp.RoleLabel != wantLabel || !sp.Ready || sp.LeaseHolder != (sp.Pod == master) {
			t.Errorf("%s: status label %q ready %v leaseHolder %v, want label %q, ready, leaseHolder %v", sp.Pod, sp.RoleLabel, sp.Ready, sp.LeaseHolder, wantLabel, sp.Pod == master)
		}
		if got := fmt.Sprint(sp.Agent["replid"]); got != b.ReplID || b.ReplID != a.ReplID {
			t.Errorf("%s: status replid %s, Redis says master_replid %s then %s", sp.Pod, got, b.ReplID, a.ReplID)
		}
		off, ok := sp.Agent["offset"].(float64)
		if !ok || int64(off) < b.Offset || int64(off) > a.Offset {
			t.Errorf("%s: status offset %v, Redis said master_repl_offset %d before and %d after it", sp.Pod, sp.Agent["offset"], b.Offset, a.Offset)
		}
	}
}

func redisRole(status string) string {
	if status == "replica" {
		return "slave"
	}
	return status
}

func pollUntil(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
