package realnodes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// agentFreeze is how long the agent stays frozen: half a minute past the
// minute (6 failed probes, 10 s apart) after which the old probes, HTTP
// calls to the agent's /livez, had the kubelet restart redis-server.
const agentFreeze = 90 * time.Second

// TestRedisOutlivesFrozenAgent (issue 15): redis-server's life does not
// depend on the agent. The agent container of the master pod of
// manifests/overlays/sentinel-3 is frozen (its own cgroup; redis-server
// and Sentinel keep running) for agentFreeze, then thawed. Judged on
// redis-server itself, never through the agent: the redis container's
// restartCount, INFO server's run_id (a new process has a new one) and
// uptime, and every key written before and during the freeze, read back
// from the same redis-server. The pod leaves the Services meanwhile
// (readiness is the agent's) and the agent's own liveness probe restarts
// the agent; both are reported.
func TestRedisOutlivesFrozenAgent(t *testing.T) {
	testRedisOutlivesFrozenAgent(t, filepath.Join(repoRoot(), "manifests", "overlays", "sentinel-3"))
}

func testRedisOutlivesFrozenAgent(t *testing.T, overlay string) {
	cluster.NeedsLocalNodes(t, "freeze one container")
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "probes")
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", overlay); err != nil {
		t.Fatal(err)
	}
	master := waitMaster(t, ctx, ns, "")
	addr := podFQDN(master, ns)
	mc := redisClient(addr, "")
	defer mc.Close()
	before := lifeOf(t, ctx, ns, master, addr)
	keys := []string{"before-freeze"}
	if err := mc.Set(ctx, keys[0], "1", 0).Err(); err != nil {
		t.Fatalf("write to master %s before the freeze: %v", master, err)
	}

	thaw, err := cluster.FreezeContainer(ns, master, "agent")
	if err != nil {
		t.Fatal(err)
	}
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			_ = thaw()
		}
	})
	start := time.Now()
	t.Logf("froze the agent container of master %s for %s (redis-server run_id %s, up %ss, redis restarts %d, agent restarts %d)",
		master, agentFreeze, before.runID, before.uptime, before.redisRestarts, before.agentRestarts)
	var refused []string
	unreadyAt := time.Duration(-1)
	for i := 0; time.Since(start) < agentFreeze; i++ {
		k := fmt.Sprintf("during-freeze-%d", i)
		if err := mc.Set(ctx, k, i, 0).Err(); err != nil {
			refused = append(refused, fmt.Sprintf("%s at %s: %v", k, time.Since(start).Round(time.Second), err))
		} else {
			keys = append(keys, k)
		}
		if p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, master, metav1.GetOptions{}); err == nil && unreadyAt < 0 && !podReadyCond(p) {
			unreadyAt = time.Since(start)
		}
		time.Sleep(2 * time.Second)
	}
	if err := thaw(); err != nil {
		t.Fatal(err)
	}
	thawed = true
	frozeFor := time.Since(start)
	// A restart the kubelet decided during the freeze may land after the
	// thaw: the old redis preStop, an HTTP call to the frozen agent, only
	// returned then. Watch a while before judging.
	time.Sleep(30 * time.Second)
	now := waitMaster(t, ctx, ns, "")
	after := lifeOf(t, ctx, ns, master, addr)

	t.Logf("agent frozen %s: pod %s unready %s after the freeze (readiness is the agent's); agent restarts %d -> %d; %s",
		frozeFor.Round(time.Second), master, orNever(unreadyAt), before.agentRestarts, after.agentRestarts, probeEvents(ctx, ns, master))
	t.Logf("redis-server of %s: restarts %d -> %d, run_id %s -> %s, uptime %ss -> %ss; %d writes during the freeze accepted, %d refused",
		master, before.redisRestarts, after.redisRestarts, before.runID, after.runID, before.uptime, after.uptime, len(keys)-1, len(refused))
	if after.redisRestarts != before.redisRestarts {
		t.Errorf("the redis container of %s restarted (restartCount %d -> %d) while only its agent was frozen", master, before.redisRestarts, after.redisRestarts)
	}
	if after.runID != before.runID {
		t.Errorf("redis-server of %s is a new process (run_id %s -> %s) after its agent was frozen", master, before.runID, after.runID)
	}
	if up0, err0 := strconv.Atoi(before.uptime); err0 == nil {
		if up1, err1 := strconv.Atoi(after.uptime); err1 != nil || time.Duration(up1-up0)*time.Second < frozeFor {
			t.Errorf("redis-server of %s: uptime %ss -> %ss, less than the %s its agent was frozen", master, before.uptime, after.uptime, frozeFor.Round(time.Second))
		}
	}
	if now != master {
		t.Errorf("master moved from %s to %s while only its agent was frozen", master, now)
	}
	if len(refused) > 0 {
		t.Errorf("redis-server of %s refused writes while its agent was frozen: %s", master, strings.Join(refused, "; "))
	}
	missing := 0
	for _, k := range keys {
		if err := mc.Get(ctx, k).Err(); err != nil {
			missing++
			t.Errorf("key %s, written to %s, is not there after the freeze: %v", k, master, err)
		}
	}
	if missing == 0 {
		t.Logf("all %d keys written before and during the freeze read back from %s", len(keys), master)
	}
}

// life is what shows whether redis-server was restarted: the kubelet's
// counts and redis-server's own identity.
type life struct {
	redisRestarts, agentRestarts int32
	runID, uptime                string
}

func lifeOf(t *testing.T, ctx context.Context, ns, pod, addr string) life {
	t.Helper()
	p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var l life
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == "redis" {
			l.redisRestarts = s.RestartCount
		}
	}
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == "agent" {
			l.agentRestarts = s.RestartCount
		}
	}
	info := serverInfo(t, ctx, addr)
	l.runID, l.uptime = info["run_id"], info["uptime_in_seconds"]
	return l
}

// probeEvents counts the kubelet's probe failures and kills on the pod, by
// container, from its Events.
func probeEvents(ctx context.Context, ns, pod string) string {
	l, err := cluster.Clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod).String(),
	})
	if err != nil {
		return "events: " + err.Error()
	}
	n := map[string]int32{}
	for _, e := range l.Items {
		if e.Type != corev1.EventTypeWarning && e.Reason != "Killing" {
			continue
		}
		what := e.Reason
		if strings.HasPrefix(e.Message, "Liveness probe failed") {
			what = "liveness failed"
		} else if strings.HasPrefix(e.Message, "Readiness probe failed") {
			what = "readiness failed"
		}
		n[fmt.Sprintf("%s %s", e.InvolvedObject.FieldPath, what)] += max(e.Count, 1)
	}
	return fmt.Sprintf("kubelet events %v", n)
}

func orNever(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Second).String()
}
