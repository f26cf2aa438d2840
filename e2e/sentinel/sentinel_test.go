package sentinel

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

// TestColdBootstrap: a fresh StatefulSet boots fenced everywhere, elects a
// master, labels it, and every pod becomes Ready.
func TestColdBootstrap(t *testing.T) {
	ctx := context.Background()
	e, took := deploy(t, ctx)
	m, state := e.agreed(ctx)
	t.Logf("cold bootstrap: master %s agreed by role, Lease, label and Sentinels %s after apply (%s)", m, took.Round(time.Millisecond), state)
	if m == "" {
		t.Fatalf("no agreed master after deploy: %s", state)
	}
}

// TestGracefulDeleteMasterUnderWriter: deleting the master pod runs the
// preStop switchover; no acknowledged write is lost and the write gap
// through the master Service stays short.
func TestGracefulDeleteMasterUnderWriter(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	old, _ := e.agreed(ctx)
	r := e.start(ctx, 5*time.Minute)
	hold(ctx, 2*time.Second)
	r.sampler.Mark("delete "+old, true)
	if err := cluster.DeletePod(ctx, e.ns, old); err != nil {
		t.Fatalf("delete master pod %s: %v", old, err)
	}
	m := e.waitMaster(ctx, time.Minute, old)
	e.waitReady(ctx, 3*time.Minute)
	hold(ctx, 2*time.Second)
	res, a, tl := r.stop(ctx, m)
	moved, _, _ := workload.LabelMoved(tl, tl.Marks[0].At, old)
	t.Logf("graceful delete of %s: label moved to %s %s after the delete", old, m, moved.Sub(tl.Marks[0].At).Round(time.Millisecond))
	e.judge("graceful delete", res, a)
	if res.LongestGap > 5*time.Second {
		t.Errorf("graceful delete: write gap %s through the master Service; the switchover should keep it near a second", res.LongestGap)
	}
}

// TestPreStopFromAnotherPod: the agent's port is open to every pod, so a
// replica pod calls the master's /prestop as an attacker or a confused
// script could: refused (409), and the master keeps its role, its label,
// the Lease and its writes. Deleting the master afterwards still hands over.
func TestPreStopFromAnotherPod(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	old, _ := e.agreed(ctx)
	from := e.replica(ctx)
	r := e.start(ctx, 5*time.Minute)
	hold(ctx, 2*time.Second)
	ip := e.podIP(ctx, old)
	url := fmt.Sprintf("http://%s:8080/prestop", ip)
	// The images have bash but no curl: HTTP/1.0 over bash's /dev/tcp.
	get := fmt.Sprintf(`exec 3<>/dev/tcp/%s/8080 && printf 'GET /prestop HTTP/1.0\r\nHost: %s\r\n\r\n' >&3 && timeout 40 cat <&3`, ip, ip)
	var out, errb strings.Builder
	err := cluster.Exec(ctx, e.ns, from, "redis", []string{"bash", "-c", get}, &out, &errb)
	head, body, _ := strings.Cut(out.String(), "\r\n\r\n")
	status, _, _ := strings.Cut(head, "\r\n") // HTTP/1.0 409 Conflict
	code := ""
	if f := strings.Fields(status); len(f) >= 2 {
		code = f[1]
	}
	body = strings.TrimSpace(body)
	t.Logf("GET %s from %s: %s %q (exec err %v, stderr %q)", url, from, code, body, err, errb.String())
	if err != nil || code != "409" || !strings.Contains(body, "not being deleted") {
		t.Errorf("GET /prestop on master %s from pod %s = %s %q, %v; want 409 saying the pod is not being deleted", old, from, code, body, err)
	}
	hold(ctx, 8*time.Second) // longer than a switchover would take
	m := e.waitMaster(ctx, time.Minute, "")
	if m != old {
		t.Errorf("master moved from %s to %s after a /prestop call from another pod", old, m)
	}
	r.sampler.Mark("delete "+old, true)
	if err := cluster.DeletePod(ctx, e.ns, old); err != nil {
		t.Fatalf("delete master pod %s: %v", old, err)
	}
	m = e.waitMaster(ctx, time.Minute, old)
	e.waitReady(ctx, 3*time.Minute)
	res, a, _ := r.stop(ctx, m)
	e.judge("prestop from another pod, then delete", res, a)
	if res.LongestGap > 5*time.Second {
		t.Errorf("write gap %s through the master Service; the refused call must not pause writes and the deletion's switchover keeps it near a second", res.LongestGap)
	}
}

// TestSIGKILLMaster: Sentinel fails over; the new master's agent takes the
// Lease and the label; nothing acknowledged is lost.
func TestSIGKILLMaster(t *testing.T) {
	cluster.NeedsLocalNodes(t, "kill-container")
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	old, _ := e.agreed(ctx)
	r := e.start(ctx, 5*time.Minute)
	hold(ctx, 2*time.Second)
	r.sampler.Mark("SIGKILL redis in "+old, true)
	if err := cluster.KillContainer(e.ns, old, "redis"); err != nil {
		t.Fatalf("kill redis in %s: %v", old, err)
	}
	m := e.waitMaster(ctx, 2*time.Minute, old)
	e.waitReady(ctx, 3*time.Minute)
	res, a, tl := r.stop(ctx, m)
	kill := tl.Marks[0].At
	movedAt, _, _ := workload.MasterMoved(tl, kill, old)
	labelAt, _, _ := workload.LabelMoved(tl, kill, old)
	t.Logf("SIGKILL %s: new master %s writable %s after the kill, labelled %s after the kill (label %s after promotion)", old, m,
		movedAt.Sub(kill).Round(time.Millisecond), labelAt.Sub(kill).Round(time.Millisecond), labelAt.Sub(movedAt).Round(time.Millisecond))
	e.judge("SIGKILL master", res, a)
}

// TestPartitionMaster30s: the master is cut off from everything for 30s:
// redis-server itself refuses writes (min-replicas-to-write) before
// Sentinel can promote another pod, Sentinel fails over on the other side,
// and after the heal the old master rejoins as a replica. The oracle writes
// a probe key straight to each pod (through exec where the partition cuts
// the network): at no sampled instant may two pods have accepted a write.
func TestPartitionMaster30s(t *testing.T) {
	cluster.NeedsLocalNodes(t, "partition")
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	old, _ := e.agreed(ctx)
	r := e.start(ctx, 5*time.Minute)
	hold(ctx, 2*time.Second)
	r.sampler.Mark("partition "+old, true)
	if err := cluster.Partition(ctx, e.ns, old); err != nil {
		t.Fatalf("partition %s: %v", old, err)
	}
	hold(ctx, 30*time.Second)
	if err := cluster.Heal(ctx, e.ns, old); err != nil {
		t.Fatalf("heal %s: %v", old, err)
	}
	m := e.waitMaster(ctx, 2*time.Minute, old)
	e.waitReady(ctx, 3*time.Minute)
	res, a, tl := r.stop(ctx, m)
	part := tl.Marks[0].At
	labelAt, _, _ := workload.LabelMoved(tl, part, old)
	t.Logf("partition of %s: label on %s %s after the partition", old, m, labelAt.Sub(part).Round(time.Millisecond))
	lastOld, firstNew, probes := probeTimes(tl, part, old)
	t.Logf("partition of %s: %s; last write accepted by %s %s after the partition, first by another pod %s after it",
		old, probes, old, since(lastOld, part), since(firstNew, part))
	e.judge("partition 30s", res, a)
	if len(a.WritableOverlaps) > 0 {
		t.Errorf("partition 30s: two pods accepted probe writes at the same sampled instant: %v", a.WritableOverlaps)
	}
	if firstNew.IsZero() {
		t.Errorf("partition 30s: no other pod accepted a probe write after the partition; the oracle saw no failover")
	}
}

// probeTimes reads the probe writes of a ProbeWrites timeline after from:
// the last one pod accepted and the first any other pod accepted, and a
// count of probes by outcome.
func probeTimes(tl workload.Timeline, from time.Time, pod string) (lastOld, firstNew time.Time, counts string) {
	n := map[string]int{}
	for _, s := range tl.Samples {
		if s.At.Before(from) || !s.Probed {
			continue
		}
		n[fmt.Sprintf("%s/%s ok=%t", s.Pod, s.Via, s.ProbeOK)]++
		switch {
		case !s.ProbeOK:
		case s.Pod == pod && s.At.After(lastOld):
			lastOld = s.At
		case s.Pod != pod && (firstNew.IsZero() || s.At.Before(firstNew)):
			firstNew = s.At
		}
	}
	return lastOld, firstNew, fmt.Sprintf("probes %v", n)
}

func since(t, from time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Sub(from).Round(time.Millisecond).String()
}

// TestFiveRestartsOfTheMaster: the master pod is deleted five times in a
// row under a writer; each time a replica takes over with nothing lost.
func TestFiveRestartsOfTheMaster(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	r := e.start(ctx, 15*time.Minute)
	var m string
	var olds []string
	for i := 0; i < 5; i++ {
		old, _ := e.agreed(ctx)
		olds = append(olds, old)
		r.sampler.Mark("delete "+old, true)
		if err := cluster.DeletePod(ctx, e.ns, old); err != nil {
			t.Fatalf("restart %d: delete %s: %v", i+1, old, err)
		}
		e.waitMaster(ctx, time.Minute, old)
		e.waitReady(ctx, 3*time.Minute)
		m = e.waitMaster(ctx, time.Minute, "")
		t.Logf("restart %d: %s -> %s", i+1, old, m)
	}
	res, a, tl := r.stop(ctx, m)
	for i, mk := range tl.Marks {
		at, to, ok := workload.LabelMoved(tl, mk.At, olds[i])
		t.Logf("restart %d (%s): label moved to %s %s after the delete (seen %t)", i+1, mk.What, to, at.Sub(mk.At).Round(time.Millisecond), ok)
	}
	for _, rc := range a.RoleChanges {
		t.Logf("role change %s %s %s writable=%t", rc.At.Format("15:04:05.000"), rc.Pod, rc.Role, rc.Writable)
	}
	e.judge("five restarts", res, a)
}

// TestDeleteAllPods (issue #4, test 4): a full restart in which pod 0 holds
// stale data. Pod 2 is made the master (Sentinel failover), pod 0 is
// frozen, and 300 more writes land on pod 2 and its one live replica, pod 1
// (min-replicas-to-write 1: with both replicas frozen the master would
// rightly refuse them); then every pod is deleted at once with no grace
// period (SIGKILL, as a power loss). The cold-start election must pick a
// pod with the newest data, pod 1 or 2 — never pod 0, which has no special
// right — and no write acknowledged before the restart may be lost. A
// write the master refused (NOREPLICAS, a replica ACK late on a loaded
// machine) was not acknowledged and is not counted.
func TestDeleteAllPods(t *testing.T) {
	cluster.NeedsLocalNodes(t, "freeze")
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	c := e.masterService()
	defer c.Close()
	var keys []string
	for i := 0; i < 500; i++ {
		k := fmt.Sprintf("%s:full:%d", e.ns, i)
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("write before the restart: %v", err)
		}
		keys = append(keys, k)
	}
	if n, err := c.Do(ctx, "WAIT", 2, 5000).Int(); err != nil || n != 2 {
		t.Fatalf("WAIT 2 before the restart: %d, %v", n, err)
	}

	freshest := fmt.Sprintf("%s-%d", sts, pods-1)
	stale := fmt.Sprintf("%s-0", sts)
	e.makeMaster(ctx, freshest)
	if err := cluster.Freeze(e.ns, stale); err != nil {
		t.Fatalf("freeze %s: %v", stale, err)
	}
	ip := e.podIP(ctx, freshest)
	m := e.client(ip, 6379)
	defer m.Close()
	refused := 0
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("%s:not-on-%s:%d", e.ns, stale, i)
		err := m.Set(ctx, k, i, 0).Err()
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "NOREPLICAS"):
			refused++
			continue
		case err != nil:
			t.Fatalf("write to %s while %s is frozen: %v", freshest, stale, err)
		}
		keys = append(keys, k)
	}
	t.Logf("while %s was frozen: %d writes acknowledged by %s, %d refused (NOREPLICAS, not counted)", stale, 300-refused, freshest, refused)
	if refused == 300 {
		t.Fatalf("%s refused every write with one replica live; the test would prove nothing about the newest data", freshest)
	}
	// appendfsync everysec, and the agent saves the replication position
	// every pass: both are on disk after a few seconds.
	time.Sleep(3 * time.Second)

	start := time.Now()
	zero := int64(0)
	list := metav1.ListOptions{LabelSelector: selector}
	if err := cluster.Clientset.CoreV1().Pods(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, list); err != nil {
		t.Fatalf("delete all pods: %v", err)
	}
	_ = cluster.Thaw(e.ns, stale) // gone already; a no-op unless the kill lost a race
	e.waitReady(ctx, 4*time.Minute)
	got := e.waitMaster(ctx, 2*time.Minute, "")
	t.Logf("full restart: master %s agreed %s after deleting every pod", got, time.Since(start).Round(time.Millisecond))
	if got == stale {
		t.Errorf("after the full restart the master is %s, the pod frozen before the last %d writes; want a pod with the newest data (%s or its live replica)", got, 300-refused, freshest)
	}
	c2 := e.masterService()
	defer c2.Close()
	missing := 0
	for _, k := range keys {
		if c2.Get(ctx, k).Err() != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d writes acknowledged before the restart are missing after it", missing, len(keys))
	}
}

// makeMaster has Sentinel fail over to pod, when it is not the master yet:
// every other replica gets replica-priority 0 for the failover, then 100.
func (e *env) makeMaster(ctx context.Context, pod string) {
	e.t.Helper()
	// One sample of agreed() can miss a settled master (a replica's link
	// a moment down): the master would then get priority 0 too.
	cur := e.waitMaster(ctx, time.Minute, "")
	if cur == pod {
		return
	}
	var excluded []*redis.Client
	for _, p := range e.pods(ctx) {
		if p.Name == pod || p.Name == cur {
			continue
		}
		c := e.client(p.Status.PodIP, 6379)
		defer c.Close()
		if err := c.ConfigSet(ctx, "replica-priority", "0").Err(); err != nil {
			e.t.Fatalf("replica-priority 0 on %s: %v", p.Name, err)
		}
		excluded = append(excluded, c)
	}
	ip := e.podIP(ctx, pod)
	s := e.client(ip, 26379)
	defer s.Close()
	// The Sentinel asked carries the failover out with the replica
	// priorities it last read from INFO, every 10 s: in one CI run it
	// promoted a replica set to 0 a few seconds before. Wait until it
	// sees them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen, state := sentinelSeesOnly(ctx, s, pod, e.fqdn(pod), ip)
		if seen {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the Sentinel of %s did not see the other replicas at replica-priority 0 within 30s: %s", pod, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := s.Do(ctx, "SENTINEL", "FAILOVER", "mymaster").Err(); err != nil {
		e.t.Fatalf("SENTINEL FAILOVER towards %s: %v", pod, err)
	}
	if got := e.waitMaster(ctx, time.Minute, cur); got != pod {
		e.t.Fatalf("Sentinel failed over to %s, want %s", got, pod)
	}
	for _, c := range excluded {
		if err := c.ConfigSet(ctx, "replica-priority", "100").Err(); err != nil {
			e.t.Fatalf("replica-priority back to 100: %v", err)
		}
	}
}

// sentinelSeesOnly reports whether Sentinel s lists pod (by FQDN or IP) as a
// replica with a priority above 0 and every other replica at priority 0.
func sentinelSeesOnly(ctx context.Context, s *redis.Client, pod, fqdn, ip string) (bool, string) {
	reps, err := s.Do(ctx, "SENTINEL", "REPLICAS", "mymaster").Slice()
	if err != nil {
		return false, err.Error()
	}
	target := false
	var state []string
	for _, r := range reps {
		kv, _ := r.([]interface{})
		f := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			f[fmt.Sprint(kv[i])] = fmt.Sprint(kv[i+1])
		}
		state = append(state, f["name"]+" priority "+f["slave-priority"])
		isTarget := strings.HasPrefix(f["name"], fqdn+":") || strings.HasPrefix(f["name"], ip+":")
		switch {
		case isTarget && f["slave-priority"] != "0":
			target = true
		case !isTarget && f["slave-priority"] != "0":
			return false, strings.Join(state, ", ")
		}
	}
	if !target {
		return false, fmt.Sprintf("%s not listed: %s", pod, strings.Join(state, ", "))
	}
	return true, strings.Join(state, ", ")
}

func (e *env) podIP(ctx context.Context, pod string) string {
	e.t.Helper()
	p, err := cluster.Clientset.CoreV1().Pods(e.ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil || p.Status.PodIP == "" {
		e.t.Fatalf("IP of %s: %v", pod, err)
	}
	return p.Status.PodIP
}

// TestAPIServerStopped60s: with the API server down, Sentinel majorities are
// reachable, so nothing changes and Redis keeps serving without a fence.
// It is the package's last test, so that its API server restart cannot
// disturb the others: in one CI run a later test saw no pods of its
// StatefulSet for 4 minutes (cause not found; waitReady now says more).
func TestAPIServerStopped60s(t *testing.T) {
	cluster.NeedsLocalNodes(t, "stop-apiserver")
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	old, _ := e.agreed(ctx)
	r := e.start(ctx, 5*time.Minute)
	hold(ctx, 2*time.Second)
	r.sampler.Mark("stop kube-apiserver", true)
	if err := cluster.StopAPIServer(ctx); err != nil {
		t.Fatalf("stop API server: %v", err)
	}
	hold(ctx, 60*time.Second)
	if err := cluster.StartAPIServer(ctx); err != nil {
		t.Fatalf("start API server: %v", err)
	}
	m := e.waitMaster(ctx, 2*time.Minute, "")
	res, a, _ := r.stop(ctx, m)
	e.judge("API server stopped 60s", res, a)
	if m != old {
		t.Errorf("master changed from %s to %s while only the API server was down", old, m)
	}
	if res.LongestGap > 2*time.Second {
		t.Errorf("write gap %s while the API server was down; Redis must keep serving", res.LongestGap)
	}
}
