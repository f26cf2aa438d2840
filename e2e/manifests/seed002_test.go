package manifests

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/demo"
	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// restartResult is what one full restart of a seed-002 cluster showed.
type restartResult struct {
	Healthy      bool
	PodsReady    time.Duration // DeleteAllPods -> 6 new pods Ready
	Healed       time.Duration // DeleteAllPods -> clusterProblems empty
	Problems     []string      // at the deadline, when not healthy
	FirstOKState time.Duration // DeleteAllPods -> every node cluster_state:ok
}

func (r restartResult) String() string {
	if r.Healthy {
		return fmt.Sprintf("healthy: pods Ready after %s, every check passed after %s", r.PodsReady.Round(time.Millisecond), r.Healed.Round(time.Millisecond))
	}
	ok := "never"
	if r.FirstOKState > 0 {
		ok = r.FirstOKState.Round(time.Millisecond).String()
	}
	shown := r.Problems
	if len(shown) > 6 {
		shown = append(shown[:6:6], "...")
	}
	return fmt.Sprintf("BROKEN: pods Ready after %s, every node cluster_state:ok after %s, still %d problem(s) at the deadline: %s",
		r.PodsReady.Round(time.Millisecond), ok, len(r.Problems), strings.Join(shown, "; "))
}

// seedRestart deploys objs (seed 002's StatefulSet redis-cluster in some
// form), creates the cluster by hand the way the seed does (unless the
// agent's sidecar creates it), writes keys, deletes all pods at once and
// watches for heal within healWithin.
func seedRestart(t *testing.T, ctx context.Context, objs []*unstructured.Unstructured, byHand bool, healWithin time.Duration) restartResult {
	t.Helper()
	const sel, n = "app=redis-cluster", 6
	ns := newNamespace(t, ctx, "seed002")
	if err := newApplier(t).apply(ctx, ns, objs, false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pods := waitPods(t, ctx, ns, sel, n, nil, 3*time.Minute)
	t.Logf("6 pods Ready after %s", time.Since(start).Round(time.Millisecond))
	if byHand {
		out, err := createCluster(ctx, ns, pods)
		if err != nil {
			t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
		}
		t.Logf("cluster created by hand, every node cluster_state:ok, %s after apply", time.Since(start).Round(time.Millisecond))
	} else if p := clusterProblems(ctx, pods, nil); len(p) > 0 {
		// Readiness is cluster_state:ok, so the agent created it already.
		t.Fatalf("cluster the agent created, with every pod Ready: %v", p)
	}

	keys := map[string]string{}
	cc := clusterClient(pods)
	for i := range 1000 {
		k, v := fmt.Sprintf("key:%d", i), fmt.Sprintf("value-%d", i)
		if err := cc.Set(ctx, k, v, 0).Err(); err != nil {
			cc.Close()
			t.Fatalf("SET %s through a cluster client: %v", k, err)
		}
		keys[k] = v
	}
	// Every write reached a replica before the restart, so a key missing
	// afterwards was lost by the restart, not by replication lag. Right
	// after a cluster is created by hand a replica may still be in its
	// first full sync, so this waits for it (a precondition, not a timing).
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return waitReplicaCaughtUp(ctx, c, time.Minute)
	}); err != nil {
		cc.Close()
		t.Fatalf("replicas catching up before the restart: %v", err)
	}
	cc.Close()
	if p := clusterProblems(ctx, pods, keys); len(p) > 0 {
		t.Fatalf("cluster unhealthy before the restart: %v", p)
	}

	old := map[types.UID]bool{}
	oldIPs := map[string]bool{}
	for _, p := range pods {
		old[p.UID], oldIPs[p.Status.PodIP] = true, true
	}
	restart := time.Now()
	if err := cluster.DeleteAllPods(ctx, ns, "redis-cluster"); err != nil {
		t.Fatal(err)
	}
	var r restartResult
	pods = waitPods(t, ctx, ns, sel, n, old, 4*time.Minute)
	r.PodsReady = time.Since(restart)
	for _, p := range pods {
		if oldIPs[p.Status.PodIP] {
			t.Fatalf("pod %s got its old IP %s back: the restart did not rotate IPs", p.Name, p.Status.PodIP)
		}
	}
	deadline := time.Now().Add(healWithin)
	for {
		if r.FirstOKState == 0 {
			all := true
			for _, p := range pods {
				all = all && clusterState(ctx, p.Status.PodIP) == "ok"
			}
			if all {
				r.FirstOKState = time.Since(restart)
			}
		}
		r.Problems = clusterProblems(ctx, pods, keys)
		if len(r.Problems) == 0 {
			r.Healthy, r.Healed = true, time.Since(restart)
		}
		if r.Healthy || time.Now().After(deadline) {
			logInitSteps(t, ns, pods)
			return r
		}
		time.Sleep(500 * time.Millisecond) // poll interval, bounded by deadline
	}
}

// logInitSteps shows what agent-init (if the pods have it) did to
// nodes.conf on the restart: addresses rewritten, and peers whose names did
// not resolve yet (with OrderedReady, later pods do not exist yet when an
// earlier pod's init runs).
func logInitSteps(t *testing.T, ns string, pods []corev1.Pod) {
	t.Helper()
	for i := range pods {
		log := containerLog(ns, &pods[i], "agent-init")
		if log == "" {
			continue
		}
		t.Logf("%s agent-init: %d address(es) rewritten, %d peer(s) did not resolve and kept their old address",
			pods[i].Name, strings.Count(log, `"address rewritten"`), strings.Count(log, "peer hostname did not resolve"))
	}
}

// TestSeed002WithAgentInit: seed 002's StatefulSet with the agent-init
// component (overlays/seed002-with-agent-init) survives deleting all pods
// at once. Seed 002's verbatim manifest (update-node.sh) and the overlay
// with the whole agent run the same restart in make e2e-long
// (TestSeed002Baseline, TestSeed002WithAgent): outside CI's time budget.
func TestSeed002WithAgentInit(t *testing.T) { seedOverlayRestart(t, "seed002-with-agent-init", true) }

// TestSeed002WithAgent: both components, the sidecar creates the cluster
// (no redis-cli) and re-meets peers after the restart (make e2e-long).
func TestSeed002WithAgent(t *testing.T) { seedOverlayRestart(t, "seed002-with-agent", false) }

// seedOverlayRestart deploys manifests/overlays/<overlay> (byHand: the
// cluster is created with redis-cli as the seed does), restarts every pod
// at once and requires a healthy cluster with every key afterwards.
func seedOverlayRestart(t *testing.T, overlay string, byHand bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := seedRestart(t, ctx, kustomize(t, ctx, manifestsDir+"/overlays/"+overlay), byHand, 60*time.Second)
	t.Logf("full restart, 6 pods, 1000 keys, overlays/%s: %s", overlay, r)
	if !r.Healthy {
		t.Errorf("overlays/%s did not survive a delete-all-pods restart: %s", overlay, r)
	}
}

// TestSeed002Baseline: the seed's own manifest (update-node.sh), restarted
// the same way, reported as the baseline; it asserts nothing about the
// agent (make e2e-long, E2E_BASELINES=1).
func TestSeed002Baseline(t *testing.T) {
	localkube.NeedBaselines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The seed's redis-sts.yml, verbatim (e2e/testdata/seed002). Its
	// redis-svc.yml pins ClusterIP 10.96.0.106 and only serves the
	// seed's demo app, so it is left out.
	r := seedRestart(t, ctx, readObjects(t, "../testdata/seed002/redis-sts.yml"), true, 60*time.Second)
	t.Logf("full restart, 6 pods, 1000 keys, seed 002 verbatim (update-node.sh): %s", r)
}

// waitReplicaCaughtUp waits until an online replica of the master behind c
// has the offset the master had when the wait began.
func waitReplicaCaughtUp(ctx context.Context, c *redis.Client, within time.Duration) error {
	deadline := time.Now().Add(within)
	target := int64(-1)
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil {
			master, _ := strconv.ParseInt(demo.ParseInfoField(info, "master_repl_offset"), 10, 64)
			if target < 0 {
				target = master
			}
			if bestReplicaOffset(info) >= target {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no online replica of %s reached offset %d within %s (last: %q, %v)", c.Options().Addr, target, within, info, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// bestReplicaOffset is the highest offset of an online replica in INFO
// replication (slaveN:ip=...,state=online,offset=N,...); -1 for none.
func bestReplicaOffset(info string) int64 {
	best := int64(-1)
	for _, l := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok || !strings.HasPrefix(k, "slave") || !strings.Contains(v, "state=online") {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(f, "offset="); ok {
				if o, err := strconv.ParseInt(n, 10, 64); err == nil && o > best {
					best = o
				}
			}
		}
	}
	return best
}
