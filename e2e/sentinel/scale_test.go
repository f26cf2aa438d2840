package sentinel

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestScaleUpAndDown: `kubectl scale` 3→5→3 under a WAIT 1 writer through
// the master Service. After each step every pod is Ready, one pod is
// labelled master, and every Sentinel — read directly, not through the
// agent — names that master, lists exactly the other live pods as its
// Sentinels and the live replicas as its replicas, and reports the quorum
// the agent's rule gives for the new count (a majority). No acknowledged
// write may be lost and no two pods may be labelled master at once.
func TestScaleUpAndDown(t *testing.T) {
	ctx := context.Background()
	e, _ := deploy(t, ctx)
	r := e.start(ctx, 20*time.Minute)
	hold(ctx, 3*time.Second)

	for _, n := range []int{5, 3} {
		start := time.Now()
		if err := cluster.Kubectl(ctx, nil, os.Stderr, "scale", "-n", e.ns, "statefulset/"+sts, fmt.Sprintf("--replicas=%d", n)); err != nil {
			t.Fatalf("kubectl scale to %d: %v", n, err)
		}
		state := e.waitScaled(ctx, n, 5*time.Minute)
		t.Logf("scale to %d: healthy after %s (%s)", n, time.Since(start).Round(time.Millisecond), state)
		hold(ctx, 3*time.Second) // writes keep going across the settled state
	}

	master := e.waitMaster(ctx, time.Minute, "")
	res, a, _ := r.stop(ctx, master)
	e.judge("scale 3→5→3", res, a)

	evs, err := cluster.Clientset.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	resets := 0
	for _, ev := range evs.Items {
		switch ev.Reason {
		case "SentinelReset":
			resets++
			t.Logf("event %s %s: %s", ev.Reason, ev.InvolvedObject.Name, ev.Message)
		case "SentinelQuorumSet", "ScaleFollowed":
			t.Logf("event %s %s: %s", ev.Reason, ev.InvolvedObject.Name, ev.Message)
		}
	}
	if resets == 0 {
		t.Errorf("no SentinelReset event after the scale-down; the Sentinels' lists were cleaned some other way")
	}
}

// waitScaled waits until exactly n pods redis-0..n-1 are Ready, one is
// labelled master, and every Sentinel agrees with that (see
// TestScaleUpAndDown); it returns a one-line summary.
func (e *env) waitScaled(ctx context.Context, n int, timeout time.Duration) string {
	e.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, state := e.scaledState(ctx, n)
		last = state
		return ok, nil
	})
	if err != nil {
		e.t.Fatalf("waiting %s for %d pods with consistent Sentinels in %s: %v\nlast: %s", timeout, n, e.ns, err, last)
	}
	return last
}

func (e *env) scaledState(ctx context.Context, n int) (bool, string) {
	ps, err := e.listPods(ctx)
	if err != nil {
		return false, "list pods: " + err.Error()
	}
	if len(ps) != n {
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		return false, fmt.Sprintf("%d pods, want %d: %v", len(ps), n, names)
	}
	master := ""
	ips := map[string]string{}
	for i := range ps {
		p := &ps[i]
		if p.Status.Phase != "Running" || p.DeletionTimestamp != nil || !podReady(p) {
			return false, p.Name + " not Ready"
		}
		if p.Labels[roleLabel] == "master" {
			if master != "" {
				return false, "two pods labelled master: " + master + ", " + p.Name
			}
			master = p.Name
		}
		ips[p.Name] = p.Status.PodIP
	}
	if master == "" {
		return false, "no pod labelled master"
	}
	all := make([]string, 0, n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d", sts, i)
		if _, ok := ips[name]; !ok {
			return false, "missing pod " + name
		}
		all = append(all, name)
	}
	wantQuorum := strconv.Itoa(n/2 + 1)
	for _, pod := range all {
		s := e.client(ips[pod], 26379)
		got, err := readSentinel(ctx, s)
		s.Close()
		if err != nil {
			return false, fmt.Sprintf("Sentinel of %s: %v", pod, err)
		}
		var wantSentinels, wantReplicas []string
		for _, o := range all {
			if o != pod {
				wantSentinels = append(wantSentinels, e.fqdn(o))
			}
			if o != master {
				wantReplicas = append(wantReplicas, e.fqdn(o))
			}
		}
		switch {
		case got.master != e.fqdn(master):
			return false, fmt.Sprintf("Sentinel of %s names master %s, want %s", pod, got.master, e.fqdn(master))
		case got.quorum != wantQuorum:
			return false, fmt.Sprintf("Sentinel of %s reports quorum %s, want %s for %d pods", pod, got.quorum, wantQuorum, n)
		case !equalSets(got.sentinels, wantSentinels):
			return false, fmt.Sprintf("Sentinel of %s lists Sentinels %v, want %v", pod, got.sentinels, wantSentinels)
		case !equalSets(got.replicas, wantReplicas):
			return false, fmt.Sprintf("Sentinel of %s lists replicas %v, want %v", pod, got.replicas, wantReplicas)
		}
	}
	return true, fmt.Sprintf("master %s, every Sentinel lists %d Sentinels and %d replicas, quorum %s", master, n, n-1, wantQuorum)
}

// sentinelLists is what one Sentinel reports for mymaster. Entries whose
// flags carry s_down or disconnected are listed with their flags, so a
// stale entry never matches a live pod's name.
type sentinelLists struct {
	master, quorum      string
	sentinels, replicas []string
}

func readSentinel(ctx context.Context, s *redis.Client) (sentinelLists, error) {
	var out sentinelLists
	m, err := s.Do(ctx, "SENTINEL", "MASTER", "mymaster").Slice()
	if err != nil {
		return out, fmt.Errorf("SENTINEL MASTER: %w", err)
	}
	f := fields(m)
	out.master, out.quorum = f["ip"], f["quorum"]
	for _, what := range []string{"SENTINELS", "REPLICAS"} {
		l, err := s.Do(ctx, "SENTINEL", what, "mymaster").Slice()
		if err != nil {
			return out, fmt.Errorf("SENTINEL %s: %w", what, err)
		}
		var hosts []string
		for _, x := range l {
			kv, _ := x.([]interface{})
			f := fields(kv)
			h := f["ip"]
			if strings.Contains(f["flags"], "s_down") || strings.Contains(f["flags"], "disconnected") {
				h += " (" + f["flags"] + ")"
			}
			hosts = append(hosts, h)
		}
		if what == "SENTINELS" {
			out.sentinels = hosts
		} else {
			out.replicas = hosts
		}
	}
	return out, nil
}

func fields(kv []interface{}) map[string]string {
	f := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[fmt.Sprint(kv[i])] = fmt.Sprint(kv[i+1])
	}
	return f
}

func equalSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
