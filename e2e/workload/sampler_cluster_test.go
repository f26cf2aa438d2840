package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestSamplerClusterFailover runs the whole Sampler, cluster mode with
// probe writes, against two real redis-server cluster nodes on loopback
// (pods a and b, one master with every slot and its replica) through
// several CLUSTER FAILOVER handovers: the oracle must see each handover
// and no two writable masters. The old master pauses its writes during a
// manual failover, so a window that shows up here is the sampler's.
func TestSamplerClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 20s with real redis-server processes")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("%s not in PATH: %v; install it with `make deps` (apt-get install redis-server redis-tools)", "redis-server", err)
	}
	port := 20000 + rand.IntN(20000)
	ips := map[string]string{"a": "127.0.0.2", "b": "127.0.0.3"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := map[string]*redis.Client{}
	for pod, ip := range ips {
		dir := t.TempDir()
		srv := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", ip, "--bind-source-addr", ip, "--protected-mode", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf", "--cluster-node-timeout", "1000",
			"--repl-diskless-sync-delay", "0", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
		nodes[pod] = redis.NewClient(&redis.Options{Addr: net.JoinHostPort(ip, fmt.Sprint(port)), MaxRetries: -1})
		defer nodes[pod].Close()
	}
	// poll waits for cond, bounded by ctx.
	poll := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				var b strings.Builder
				for pod, c := range nodes {
					n, _ := c.ClusterNodes(context.Background()).Result()
					r, _ := c.Info(context.Background(), "replication").Result()
					fmt.Fprintf(&b, "%s:\n%s\n%s\n", pod, n, r)
				}
				t.Fatalf("%s: not within the test's deadline\n%s", what, b.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	poll("redis-servers answer", func() bool { return nodes["a"].Ping(ctx).Err() == nil && nodes["b"].Ping(ctx).Err() == nil })
	if err := nodes["a"].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, Slots-1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := nodes["b"].ClusterMeet(ctx, ips["a"], fmt.Sprint(port)).Err(); err != nil {
		t.Fatal(err)
	}
	idA, err := nodes["a"].Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}
	poll("b knows a", func() bool { return nodes["b"].Do(ctx, "CLUSTER", "REPLICATE", idA).Err() == nil })
	poll("b replicates a, cluster ok", func() bool {
		info, _ := nodes["b"].Info(ctx, "replication").Result()
		ca, _ := nodes["a"].ClusterInfo(ctx).Result()
		cb, _ := nodes["b"].ClusterInfo(ctx).Result()
		return strings.Contains(info, "master_link_status:up") && strings.Contains(ca, "cluster_state:ok") && strings.Contains(cb, "cluster_state:ok")
	})

	cs := fake.NewClientset()
	for pod, ip := range ips {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: "ns", Labels: map[string]string{"app": "redis"}}, Status: corev1.PodStatus{PodIP: ip}}
		if _, err := cs.CoreV1().Pods("ns").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var d net.Dialer
	s := &Sampler{Namespace: "ns", Selector: "app=redis", RoleLabel: "role", Cluster: true, ProbeWrites: true, RedisPort: port,
		Interval: 100 * time.Millisecond, Clientset: cs, Dial: d.DialContext}
	runCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	done := make(chan Timeline)
	go func() { tl, _ := s.Run(runCtx); done <- tl }()

	const handovers = 6
	master, replica := "a", "b"
	var starts []time.Time
	time.Sleep(time.Second) // traffic before the first handover, on purpose
	for range handovers {
		s.Mark("CLUSTER FAILOVER on "+replica, true)
		starts = append(starts, time.Now())
		if err := nodes[replica].Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
			t.Fatal(err)
		}
		poll(replica+" is master", func() bool {
			role, _ := nodes[replica].Do(ctx, "ROLE").Slice()
			info, _ := nodes[master].Info(ctx, "replication").Result()
			return len(role) > 0 && role[0] == "master" && strings.Contains(info, "master_link_status:up")
		})
		// A master votes for a failover of the same master once per two
		// node timeouts; the next handover hands the same shard back.
		time.Sleep(2500 * time.Millisecond)
		master, replica = replica, master
	}
	stop()
	tl := <-done

	a := Analyze(tl, time.Second, 10*time.Second)
	for _, o := range a.WritableOverlaps {
		t.Errorf("two writable masters %v from %s for %s; samples:\n%s", o.Pods, o.From.Format("15:04:05.000"), o.Duration(), samplesNear(tl, o.From))
	}
	blocked, probed := 0, 0
	for _, smp := range tl.Samples {
		if smp.Blocked {
			blocked++
		}
		if smp.Probed {
			probed++
		}
	}
	old := "a"
	for i, at := range starts {
		moved, pod, ok := MasterMoved(tl, at, old)
		if !ok {
			t.Errorf("handover %d: the oracle never saw a pod other than %s writable", i+1, old)
			continue
		}
		t.Logf("handover %d: %s writable %s after CLUSTER FAILOVER", i+1, pod, moved.Sub(at).Round(time.Millisecond))
		old = pod
	}
	// What the older readings would have said, for the log: probes
	// without Resolution, and CLUSTER NODES alone (no probes).
	nodesOnly := sortedCopy(tl)
	for i := range nodesOnly.Samples {
		nodesOnly.Samples[i].Probed = false
	}
	t.Logf("%d samples, %d probed, %d held by a pause; overlaps: %d; without Resolution: %d; from CLUSTER NODES alone, without Resolution: %d",
		len(tl.Samples), probed, blocked, len(a.WritableOverlaps), len(writableOverlaps(sortedCopy(tl), time.Second, 0)), len(writableOverlaps(nodesOnly, time.Second, 0)))
}

func sortedCopy(tl Timeline) Timeline { sortTimeline(&tl); return tl }

// samplesNear lists the samples from 300ms before t to 300ms after.
func samplesNear(tl Timeline, t time.Time) string {
	tl = sortedCopy(tl)
	var b strings.Builder
	for _, s := range tl.Samples {
		if s.At.Before(t.Add(-300*time.Millisecond)) || s.At.After(t.Add(300*time.Millisecond)) {
			continue
		}
		fmt.Fprintf(&b, "  %s %s role=%s probed=%t ok=%t blocked=%t writable=%t\n", s.At.Format("15:04:05.000"), s.Pod, s.Role, s.Probed, s.ProbeOK, s.Blocked, s.Writable())
	}
	return b.String()
}
