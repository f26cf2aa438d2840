package sentinel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// TestSentinelResetForgetsRemovedPod: a fourth pod (redis-server replica and
// Sentinel on the next loopback address) joins the three pods' Sentinels
// and is then killed, as a scale-down from 4 to 3 leaves it: every Sentinel
// still lists its Sentinel and replica. The agents must SENTINEL RESET
// their own Sentinel one at a time, in ordinal order, after which every
// Sentinel lists exactly the two other live Sentinels and the live
// replicas again.
func TestSentinelResetForgetsRemovedPod(t *testing.T) {
	e := newSentinelEnv(t)
	ctx := context.Background()
	for i := 0; i < envPods; i++ {
		if err := e.init(i); err != nil {
			t.Fatalf("init pod %d: %v", i, err)
		}
		e.startRedis(i, true)
		e.startSentinel(i)
	}
	for i := 0; i < envPods; i++ {
		e.startAgent(i)
	}
	var master int
	e.waitFor(40*time.Second, "a master elected", func() (bool, string) {
		m, s := e.masterOf()
		master = m
		return m >= 0, s
	})
	members := func(i int) (sentinelMembers, error) {
		n := dialSentinel(redisx.Dial{Password: e.pw, Timeout: time.Second}, e.addr(i), 26379)
		defer n.Close()
		ms, _, err := n.Members(ctx, "mymaster")
		return ms, err
	}
	knows := func(want int) func() (bool, string) {
		return func() (bool, string) {
			var state []string
			ok := true
			for i := 0; i < envPods; i++ {
				ms, err := members(i)
				ok = ok && err == nil && len(ms.Sentinels) == want && len(ms.Replicas) == want
				state = append(state, fmt.Sprintf("sentinel %d: sentinels %v replicas %v %v", i, ms.Sentinels, ms.Replicas, err))
			}
			return ok, strings.Join(state, "; ")
		}
	}
	e.waitFor(40*time.Second, "every Sentinel knows 2 replicas and 2 other Sentinels", knows(2))

	// The agents are off while the fourth pod joins and leaves, so that the
	// stale entries appear at once for all three when they start again.
	for i := 0; i < envPods; i++ {
		e.stopAgent(i)
	}
	extra := e.addr(envPods)
	dir := t.TempDir()
	pw := e.pw()
	rconf := filepath.Join(dir, "redis.conf")
	writeLines(t, rconf, "bind "+extra, "bind-source-addr "+extra, "port 6379", "protected-mode no", "dir "+dir, "save \"\"",
		"replicaof "+e.addr(master)+" 6379", "masterauth "+pw, "requirepass "+pw, "replica-announce-ip "+extra)
	sconf := filepath.Join(dir, "sentinel.conf")
	writeLines(t, sconf, "port 26379", "bind "+extra, "protected-mode no", "requirepass "+pw,
		"sentinel monitor mymaster "+e.addr(master)+" 6379 2", "sentinel auth-pass mymaster "+pw, "sentinel sentinel-pass "+pw,
		"sentinel down-after-milliseconds mymaster 5000", "sentinel announce-ip "+extra)
	r4 := proctest.Start(t, filepath.Join(dir, "redis.log"), e.server, rconf)
	s4 := proctest.Start(t, filepath.Join(dir, "sentinel.log"), e.sentinel, sconf)
	e.waitFor(40*time.Second, "every Sentinel knows the fourth pod's replica and Sentinel", knows(3))
	r4.Stop(syscall.SIGKILL, time.Second)
	s4.Stop(syscall.SIGKILL, time.Second)

	start := time.Now()
	for i := 0; i < envPods; i++ {
		e.startAgent(i)
	}
	e.waitFor(90*time.Second, "every Sentinel lists only the live pods", func() (bool, string) {
		var state []string
		ok := true
		for i := 0; i < envPods; i++ {
			ms, err := members(i)
			var wantS, wantR []string
			for j := 0; j < envPods; j++ {
				if j != i {
					wantS = append(wantS, e.addr(j))
				}
				if j != master {
					wantR = append(wantR, e.addr(j))
				}
			}
			ok = ok && err == nil && sameSet(hostsOf(ms.Sentinels), wantS) && sameSet(hostsOf(ms.Replicas), wantR)
			state = append(state, fmt.Sprintf("sentinel %d: sentinels %v replicas %v %v", i, ms.Sentinels, ms.Replicas, err))
		}
		return ok, strings.Join(state, "; ")
	})
	t.Logf("every Sentinel forgot the fourth pod %s after the agents started", time.Since(start).Round(time.Millisecond))

	// One reset per pod, in ordinal order (the stagger).
	var resets []string
	e.waitFor(10*time.Second, "a SentinelReset event from every pod", func() (bool, string) {
		evs, err := e.kube.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		type at struct {
			pod string
			t   time.Time
		}
		var got []at
		for _, ev := range evs.Items {
			if ev.Reason == "SentinelReset" {
				got = append(got, at{ev.Regarding.Name, ev.EventTime.Time})
			}
		}
		sort.Slice(got, func(a, b int) bool { return got[a].t.Before(got[b].t) })
		resets = resets[:0]
		for _, g := range got {
			resets = append(resets, fmt.Sprintf("%s at +%s", g.pod, g.t.Sub(start).Round(100*time.Millisecond)))
		}
		return len(got) == envPods, strings.Join(resets, ", ")
	})
	t.Logf("resets: %s", strings.Join(resets, ", "))
	for i, r := range resets {
		if want := fmt.Sprintf("redis-%d ", i); !strings.HasPrefix(r, want) {
			t.Errorf("reset %d was %s, want pod redis-%d's (one pod at a time, by ordinal): %v", i, r, i, resets)
		}
	}
}

func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hostsOf(as []memberAddr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Host)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
