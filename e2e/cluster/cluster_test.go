package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// TestClusterForms: 6 pods applied, the cluster forms with no manual step.
func TestClusterForms(t *testing.T) {
	ctx := context.Background()
	e, took := deploy(t, ctx)
	t.Logf("kubectl apply -> 6 pods Ready with 3 masters x 1 replica: %s", took.Round(time.Millisecond))
	vs := e.views(ctx)
	masters, replicas := shape(vs)
	if len(masters) != 3 || len(replicas) != 3 {
		t.Fatalf("masters %v replicas %v: want 3 masters with 1 replica each", masters, replicas)
	}
	node := map[string]string{}
	for _, v := range vs {
		node[v.pod] = v.nodeName
	}
	same := 0
	for r, m := range replicas {
		if node[r] == node[m] {
			same++
		}
	}
	t.Logf("placement %v; %d of 3 replicas share a Kubernetes node with their master", node, same)
	cc := e.clusterClient(ctx)
	start := time.Now()
	writeKeys(t, ctx, cc, "k", 10000)
	if n := missingKeys(ctx, cc, "k", 10000); n > 0 {
		t.Fatalf("%d of 10000 keys missing", n)
	}
	t.Logf("10000 keys written and read back in %s", time.Since(start).Round(time.Millisecond))
	if r := e.eventReasons(ctx); r["ClusterCreating"] == 0 {
		t.Errorf("no ClusterCreating event; events: %v", r)
	}
}

// TestClusterDeleteMaster deletes a master pod (graceful: preStop fails over
// first) under a writer.
func TestClusterDeleteMaster(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	masters, _ := shape(e.views(ctx))
	var victim string
	for m := range masters {
		if victim == "" || m < victim {
			victim = m
		}
	}
	w := e.startWriter(ctx, "w")
	hold(ctx, time.Second)
	start := time.Now()
	if err := cluster.DeletePod(ctx, e.ns, victim); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, 6, 3*time.Minute)
	hold(ctx, time.Second)
	w.finish()
	t.Logf("deleted master %s: healthy again after %s; writer %d acked, %d errors, longest write gap %s",
		victim, time.Since(start).Round(time.Millisecond), len(w.acked), w.errs, w.maxGap.Round(time.Millisecond))
	t.Logf("longest gap began %s after the delete", w.gapAt.Sub(start).Round(time.Millisecond))
	for _, ev := range e.events(ctx, "Failover") {
		t.Logf("  %s", ev)
	}
	if lost := e.verify(ctx, w); lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost", lost, len(w.acked))
	}
	// The < 1 s target is a printed figure (above and in make bench), not
	// an assertion that flakes on a loaded 2-core machine. What must hold is
	// that the handover was planned: a failover left to Redis Cluster's own
	// failure detection stops writes for at least cluster-node-timeout (5 s).
	if w.maxGap >= clusterNodeTimeout {
		t.Errorf("longest write gap %s, want under cluster-node-timeout %s: the master was not failed over in preStop", w.maxGap, clusterNodeTimeout)
	}
	if _, replicas := shape(e.views(ctx)); replicas[victim] == "" {
		t.Errorf("%s came back as %v, want a replica (its replica took over)", victim, replicas)
	}
}

// TestClusterFullRestart deletes every pod at once: every IP changes.
func TestClusterFullRestart(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	cc := e.clusterClient(ctx)
	writeKeys(t, ctx, cc, "f", 5000)
	old := map[string]string{}
	for _, p := range e.pods(ctx) {
		old[p.Name] = p.Status.PodIP
	}
	start := time.Now()
	if err := cluster.DeleteAllPods(ctx, e.ns, sts); err != nil {
		t.Fatal(err)
	}
	// Wait for new pods (new IPs) before judging health.
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		ps := e.pods(ctx)
		if len(ps) != 6 {
			return false, nil
		}
		for _, p := range ps {
			if p.Status.PodIP == "" || p.Status.PodIP == old[p.Name] {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("pods not recreated with new IPs: %v", err)
	}
	e.waitHealthy(ctx, 6, 4*time.Minute)
	t.Logf("full restart, every IP changed: healthy after %s", time.Since(start).Round(time.Millisecond))
	if n := missingKeys(ctx, e.clusterClient(ctx), "f", 5000); n > 0 {
		t.Fatalf("%d of 5000 keys missing after the full restart", n)
	}
	if r := e.eventReasons(ctx); r["NodesConfRewritten"] == 0 {
		t.Errorf("no NodesConfRewritten event after every IP changed: %v", r)
	}
	t.Run("baseline-seed002-update-node.sh", func(t *testing.T) {
		localkube.NeedBaselines(t)
		seedBaseline(t, ctx)
	})
	// Through every node, not just a smart client: MOVED must name a real
	// address, never ":0".
	for _, v := range e.views(ctx) {
		c := nodeClient(v.ip)
		for _, k := range []string{"f:0", "f:2500", "f:4999"} {
			if err := c.Get(ctx, k).Err(); err != nil && (!strings.HasPrefix(err.Error(), "MOVED ") || strings.Contains(err.Error(), " :0")) {
				t.Errorf("GET %s on %s: %v", k, v.pod, err)
			}
		}
		c.Close()
	}
}

// TestClusterScaleOutAndIn scales 6 -> 8 -> 6 (replica join mode, the
// manifests' default).
func TestClusterScaleOutAndIn(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	cc := e.clusterClient(ctx)
	writeKeys(t, ctx, cc, "s", 3000)
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, nil, "scale", "-n", e.ns, "statefulset/"+sts, "--replicas=8"); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, 8, 3*time.Minute)
	masters, replicas := shape(e.views(ctx))
	t.Logf("6 -> 8: healthy after %s; masters %v replicas %v", time.Since(start).Round(time.Millisecond), masters, replicas)
	if len(masters) != 3 || len(replicas) != 5 {
		t.Fatalf("masters %v replicas %v: want the 2 new pods as replicas", masters, replicas)
	}
	start = time.Now()
	if err := cluster.Kubectl(ctx, nil, nil, "scale", "-n", e.ns, "statefulset/"+sts, "--replicas=6"); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, 6, 3*time.Minute)
	t.Logf("8 -> 6: healthy (removed nodes forgotten) after %s", time.Since(start).Round(time.Millisecond))
	if n := missingKeys(ctx, e.clusterClient(ctx), "s", 3000); n > 0 {
		t.Fatalf("%d of 3000 keys missing after scaling", n)
	}
}

// TestClusterScaleOutAndInAsMaster scales 6 -> 8 -> 6 with
// --scale-out-as=master: pod 6 becomes a master with slots and keys moved
// to it, pod 7 its replica; on the way back pod 6's preStop moves its slots
// to the masters that stay.
func TestClusterScaleOutAndInAsMaster(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ctx)
	e.apply(ctx, "testdata/cluster-6-scale-out-master")
	e.waitHealthy(ctx, 6, 5*time.Minute)
	cc := e.clusterClient(ctx)
	writeKeys(t, ctx, cc, "sm", 10000)
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, nil, "scale", "-n", e.ns, "statefulset/"+sts, "--replicas=8"); err != nil {
		t.Fatal(err)
	}
	var masters map[string]int
	var replicas map[string]string
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		vs := e.views(ctx)
		if healthy(vs, 8) != nil {
			return false, nil
		}
		masters, replicas = shape(vs)
		return masters["redis-cluster-6"] >= 4000 && replicas["redis-cluster-7"] == "redis-cluster-6", nil
	}); err != nil {
		t.Fatalf("6 -> 8 as master: %v (masters %v replicas %v)", err, masters, replicas)
	}
	t.Logf("6 -> 8 as master: pod 6 a master with %d slots, pod 7 its replica, after %s", masters["redis-cluster-6"], time.Since(start).Round(time.Millisecond))
	if n := missingKeys(ctx, e.clusterClient(ctx), "sm", 10000); n > 0 {
		t.Fatalf("%d of 10000 keys missing after the scale-out", n)
	}
	start = time.Now()
	if err := cluster.Kubectl(ctx, nil, nil, "scale", "-n", e.ns, "statefulset/"+sts, "--replicas=6"); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(ctx, 6, 4*time.Minute)
	masters, _ = shape(e.views(ctx))
	t.Logf("8 -> 6: healthy with masters %v after %s", masters, time.Since(start).Round(time.Millisecond))
	for _, ev := range e.events(ctx, "Drain") {
		t.Logf("  %s", ev)
	}
	if n := missingKeys(ctx, e.clusterClient(ctx), "sm", 10000); n > 0 {
		t.Fatalf("%d of 10000 keys missing after the scale-in", n)
	}
	if r := e.eventReasons(ctx); r["DrainCompleted"] == 0 {
		t.Errorf("no DrainCompleted event: %v", r)
	}
}

// TestClusterRolloutRestart restarts every pod one by one under a writer.
func TestClusterRolloutRestart(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	before := map[string]string{}
	for _, p := range e.pods(ctx) {
		before[p.Name] = string(p.UID)
	}
	w := e.startWriter(ctx, "rr")
	hold(ctx, time.Second)
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, nil, "rollout", "restart", "-n", e.ns, "statefulset/"+sts); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		ps := e.pods(ctx)
		for _, p := range ps {
			if string(p.UID) == before[p.Name] || !podReady(&p) {
				return false, nil
			}
		}
		return len(ps) == 6, nil
	}); err != nil {
		t.Fatalf("rollout restart did not replace every pod: %v", err)
	}
	e.waitHealthy(ctx, 6, 2*time.Minute)
	w.finish()
	t.Logf("rollout restart of 6 pods: %s; writer %d acked, %d errors, longest write gap %s starting %s after the restart began",
		time.Since(start).Round(time.Millisecond), len(w.acked), w.errs, w.maxGap.Round(time.Millisecond), w.gapAt.Sub(start).Round(time.Millisecond))
	for _, ev := range e.events(ctx, "Failover") {
		t.Logf("  %s", ev)
	}
	if lost := e.verify(ctx, w); lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost during the rollout", lost, len(w.acked))
	}
	if w.maxGap >= clusterNodeTimeout {
		t.Errorf("longest write gap %s during the rollout, want under cluster-node-timeout %s: some master was not failed over before it stopped", w.maxGap, clusterNodeTimeout)
	}
}

// TestClusterCoordinatorLostDuringCreation freezes the coordinator's pod
// the moment the first slots are assigned (cgroup freezer: its Lease runs
// out, the pod neither answers nor dies), waits for another pod to take the
// Lease, then thaws it: the new coordinator must finish the creation from
// what it observes, without a second creation.
func TestClusterCoordinatorLostDuringCreation(t *testing.T) {
	cluster.NeedsLocalNodes(t, "freeze")
	ctx := context.Background()
	e := newEnv(t, ctx)
	start := time.Now()
	e.apply(ctx, overlay())
	var holder string
	assigned := 0
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		assigned = 0
		for _, v := range e.views(ctx) {
			assigned += v.self.slots
		}
		holder = e.leaseHolder(ctx)
		return holder != "" && assigned > 0, nil
	}); err != nil {
		t.Fatalf("no slots assigned by a coordinator: %v", err)
	}
	_, replicas := shape(e.views(ctx))
	if err := cluster.Freeze(e.ns, holder); err != nil {
		t.Fatal(err)
	}
	t.Logf("froze coordinator %s %s after apply, with %d slots assigned and %d replicas attached", holder, time.Since(start).Round(time.Millisecond), assigned, len(replicas))
	var next string
	// The coordinator Lease lasts 4 x 15 s: a frozen holder loses it
	// within about 70 s.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		next = e.leaseHolder(ctx)
		return next != "" && next != holder, nil
	}); err != nil {
		_ = cluster.Thaw(e.ns, holder)
		t.Fatalf("no other pod took the coordinator Lease from frozen %s: %v", holder, err)
	}
	if err := cluster.Thaw(e.ns, holder); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s took the Lease %s after apply; %s thawed", next, time.Since(start).Round(time.Millisecond), holder)
	e.waitHealthy(ctx, 6, 5*time.Minute)
	masters, replicas := shape(e.views(ctx))
	if len(masters) != 3 || len(replicas) != 3 {
		t.Fatalf("masters %v replicas %v: want 3 x 1 (one creation)", masters, replicas)
	}
	t.Logf("cluster complete %s after apply", time.Since(start).Round(time.Millisecond))
}

// TestClusterCorruptNodesConf truncates nodes.conf on one replica's volume:
// that pod stops in init with an error naming the file, the rest serves.
func TestClusterCorruptNodesConf(t *testing.T) {
	cluster.NeedsLocalNodes(t, "kill-pod, and files on the volume")
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	_, replicas := shape(e.views(ctx))
	var victim string
	for r := range replicas {
		if victim == "" || r < victim {
			victim = r
		}
	}
	var out, errb strings.Builder
	// Cut the file mid-line, as a crash during a non-atomic write would.
	script := "head -c 150 /data/nodes.conf > /data/nodes.conf.cut && cat /data/nodes.conf.cut > /data/nodes.conf && rm /data/nodes.conf.cut"
	if err := cluster.Exec(ctx, e.ns, victim, "redis", []string{"sh", "-c", script}, &out, &errb); err != nil {
		t.Fatalf("truncate nodes.conf in %s: %v (%s)", victim, err, errb.String())
	}
	if err := cluster.KillPod(e.ns, victim); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Clientset.CoreV1().Pods(e.ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var msg string
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cluster.Clientset.CoreV1().Pods(e.ns).Get(ctx, victim, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name != "agent-init" {
				continue
			}
			if st := initFailure(s); st != "" {
				msg = st
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%s's agent-init did not fail on the corrupt nodes.conf: %v", victim, err)
	}
	t.Logf("%s stops in init: %s", victim, msg)
	// The rest keeps serving every slot (the victim was a replica).
	cc := e.clusterClient(ctx)
	writeKeys(t, ctx, cc, "c", 1000)
	if n := missingKeys(ctx, cc, "c", 1000); n > 0 {
		t.Fatalf("%d of 1000 keys missing while %s is down", n, victim)
	}
}

// initFailure describes a failed init container, "" if it has not failed.
func initFailure(s corev1.ContainerStatus) string {
	for _, st := range []*corev1.ContainerStateTerminated{s.State.Terminated, s.LastTerminationState.Terminated} {
		if st != nil && st.ExitCode != 0 {
			return fmt.Sprintf("exit code %d %s %s (restarts %d)", st.ExitCode, st.Reason, st.Message, s.RestartCount)
		}
	}
	return ""
}

// seedBaseline runs seed 002's own manifest (update-node.sh seds only the
// myself line) through the same full restart, for the figures beside the
// agent's. It reports; the agent's result above is what the test asserts.
func seedBaseline(t *testing.T, ctx context.Context) {
	b := newEnv(t, ctx)
	b.sel = "app=redis-cluster"
	b.apply(ctx, filepath.Join(repoRoot(), "e2e", "testdata", "seed002"))
	running := func(old map[string]string) error {
		return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
			ps := b.pods(ctx)
			if len(ps) != 6 {
				return false, nil
			}
			for _, p := range ps {
				if p.Status.PodIP == "" || p.Status.PodIP == old[p.Name] || nodeClient(p.Status.PodIP).Ping(ctx).Err() != nil {
					return false, nil
				}
			}
			return true, nil
		})
	}
	if err := running(nil); err != nil {
		t.Fatalf("seed pods not running: %v", err)
	}
	args := []string{"redis-cli", "--cluster", "create"}
	for _, p := range b.pods(ctx) {
		args = append(args, p.Status.PodIP+":6379")
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	var out, errb strings.Builder
	if err := cluster.Exec(ctx, b.ns, "redis-cluster-0", "redis", args, &out, &errb); err != nil {
		t.Fatalf("the seed's manual redis-cli --cluster create: %v\n%s%s", err, out.String(), errb.String())
	}
	b.waitHealthy(ctx, 6, 2*time.Minute)
	writeKeys(t, ctx, b.clusterClient(ctx), "f", 1000)
	old := map[string]string{}
	for _, p := range b.pods(ctx) {
		old[p.Name] = p.Status.PodIP
	}
	start := time.Now()
	if err := cluster.DeleteAllPods(ctx, b.ns, sts); err != nil {
		t.Fatal(err)
	}
	if err := running(old); err != nil {
		t.Fatalf("seed pods not back with new IPs: %v", err)
	}
	var firstOK time.Duration
	var last error
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		vs := b.views(ctx)
		if ctx.Err() != nil {
			return false, nil // the poll's deadline, not the cluster's state
		}
		all := len(vs) == 6
		for _, v := range vs {
			all = all && v.state == "ok"
		}
		if all && firstOK == 0 {
			firstOK = time.Since(start)
		}
		last = healthy(vs, 6)
		return last == nil, nil
	})
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	missing := missingKeys(rctx, b.clusterClient(ctx), "f", 1000)
	if last == nil {
		t.Logf("baseline (seed 002, update-node.sh): healthy %s after the restart; %d of 1000 keys missing", time.Since(start).Round(time.Millisecond), missing)
		return
	}
	t.Logf("baseline (seed 002, update-node.sh): every node cluster_state:ok %s after the restart, yet still broken after 60s: %v; %d of 1000 keys missing or unreadable",
		firstOK.Round(time.Millisecond), last, missing)
}

// clusterNodeTimeout is cluster-node-timeout in manifests/base/cluster/redis.conf.
const clusterNodeTimeout = 5 * time.Second
