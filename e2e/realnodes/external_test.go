package realnodes

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

// The NodePorts of components/external-access: ordinal i at base + i.
const (
	externalRedisPort    = 30379
	externalSentinelPort = 30479
)

// outsideDialer is the network of a client outside the Kubernetes cluster:
// it reaches the nodes' addresses and nothing else (no pod IP, no
// ClusterIP, no cluster DNS). Every dial is recorded; one to any other
// address is refused and counted, since it means the client was handed an
// address only the cluster network knows.
type outsideDialer struct {
	nodes map[string]bool
	mu    sync.Mutex
	dials map[string]int
	// refused lists the addresses that were not node addresses.
	refused []string
}

func (d *outsideDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if !d.nodes[host] {
		d.refused = append(d.refused, addr)
		d.mu.Unlock()
		return nil, fmt.Errorf("outside client: %s is not a node address (nodes: %v)", addr, d.nodeList())
	}
	d.dials[addr]++
	d.mu.Unlock()
	return cluster.DialContext(ctx, network, addr)
}

func (d *outsideDialer) nodeList() []string {
	var out []string
	for n := range d.nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// redisPortsDialed are the external Redis ports the client dialed.
func (d *outsideDialer) redisPortsDialed() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[int]bool{}
	for addr := range d.dials {
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if port >= externalRedisPort && port < externalRedisPort+3 {
			seen[port] = true
		}
	}
	var out []int
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// nodeAddresses are the InternalIP and ExternalIP addresses of every Node.
func nodeAddresses(t *testing.T, ctx context.Context) map[string]bool {
	t.Helper()
	l, err := cluster.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range l.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				out[a.Address] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no Node has an InternalIP or ExternalIP address")
	}
	return out
}

// TestExternalAccessSentinel applies overlays/sentinel-3-external on the
// real nodes and writes from a client that reaches only the nodes'
// addresses: it knows the three Sentinels' NodePorts and nothing else.
// Sentinel must name the master at a node address and NodePort, and the
// client must follow a planned switchover (the master pod deleted) and an
// unplanned failover (the new master's containers SIGKILLed) to the new
// master's NodePort, with SET + WAIT 1 and no acknowledged write lost,
// read back from the final master over the cluster network.
func TestExternalAccessSentinel(t *testing.T) {
	cluster.NeedsLocalNodes(t, "a client that reaches only the nodes' addresses, and SIGKILL of a pod")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	waitNodePortsFree(t, ctx)
	ns := newNamespace(t, ctx, "external")
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", filepath.Join(repoRoot(), "manifests", "overlays", "sentinel-3-external")); err != nil {
		t.Fatal(err)
	}
	master := waitMaster(t, ctx, ns, "")
	t.Logf("3 pods Ready, master %s, %.1fs after apply", master, time.Since(start).Seconds())

	out := &outsideDialer{nodes: nodeAddresses(t, ctx), dials: map[string]int{}}
	nodes := out.nodeList()
	var sentinels []string
	for i := 0; i < 3; i++ {
		sentinels = append(sentinels, net.JoinHostPort(nodes[i%len(nodes)], strconv.Itoa(externalSentinelPort+i)))
	}
	t.Logf("outside client: node addresses %v, Sentinels at %v", nodes, sentinels)

	checkSentinelsNameExternal(t, ctx, out, sentinels, master)

	newClient := func() *redis.Client {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: "mymaster", SentinelAddrs: sentinels, Dialer: out.dial,
			Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 2,
			DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: time.Second,
		})
	}
	var hs []workload.History
	for _, step := range []struct {
		name  string
		fault func(pod string) error
	}{
		{"delete master", func(pod string) error { return cluster.DeletePod(ctx, ns, pod) }},
		{"sigkill master", func(pod string) error { return cluster.KillPod(ns, pod) }},
	} {
		t.Run(step.name, func(t *testing.T) {
			c := newClient()
			defer c.Close()
			w := &workload.Writer{Name: step.name, Client: c, Mode: workload.ModeWait1, Interval: 20 * time.Millisecond,
				Prefix: strings.ReplaceAll(step.name, " ", "-"), WaitTimeout: time.Second}
			wctx, stop := context.WithTimeout(ctx, 4*time.Minute)
			defer stop()
			done := make(chan workload.History, 1)
			go func() {
				h, err := w.Run(wctx)
				if err != nil {
					t.Error(err)
				}
				done <- h
			}()
			time.Sleep(3 * time.Second)
			faultAt := time.Now()
			if err := step.fault(master); err != nil {
				stop()
				<-done
				t.Fatal(err)
			}
			next := waitMaster(t, ctx, ns, master)
			moved := time.Now()
			t.Logf("master moved %s → %s in %.1fs", master, next, moved.Sub(faultAt).Seconds())
			time.Sleep(3 * time.Second)
			stop()
			h := <-done
			master = next
			hs = append(hs, h)
			after := 0
			for _, op := range h.Ops {
				if op.Acked(h.Mode) && op.Start.After(moved) {
					after++
				}
			}
			if after == 0 {
				t.Errorf("no write was acknowledged after the master moved to %s: the outside client did not follow", next)
			}
			t.Logf("%d writes, %d acknowledged after the master moved", len(h.Ops), after)
		})
	}

	// Read back from the final master over the cluster network (its pod
	// name), not through the path under test.
	checkSentinelsNameExternal(t, ctx, out, sentinels, master)
	rc := redisClient(podFQDN(master, ns), "")
	defer rc.Close()
	if role, err := rc.Do(ctx, "ROLE").Slice(); err != nil || len(role) == 0 || role[0] != "master" {
		t.Fatalf("ROLE on %s: %v %v; want master", master, role, err)
	}
	for _, h := range hs {
		present, err := workload.Readback(ctx, rc, h)
		if err != nil {
			t.Fatal(err)
		}
		r := workload.Check(h, present)
		t.Logf("%s: %d attempts, %d acknowledged (WAIT 1), %d WAIT 0, %d errors, longest gap between acknowledged writes %s; acknowledged lost: %d",
			r.Name, r.Attempts, r.Acked, r.Wait0, r.Errors, r.LongestGap.Round(time.Millisecond), r.AckedLost)
		if r.AckedLost > 0 {
			t.Errorf("%s: %d acknowledged writes lost, e.g. %v", r.Name, r.AckedLost, r.LostKeys)
		}
		if r.Acked < 50 {
			t.Errorf("%s: only %d writes acknowledged; the run proves nothing", r.Name, r.Acked)
		}
	}
	ports := out.redisPortsDialed()
	t.Logf("outside client dialed Redis NodePorts %v; refused (not node addresses): %v", ports, out.refused)
	if len(ports) < 2 {
		t.Errorf("outside client dialed Redis NodePorts %v: it never followed the master to another pod", ports)
	}
	if len(out.refused) > 0 {
		t.Errorf("the outside client was handed addresses that are not node addresses: %v", out.refused)
	}
}

// checkSentinelsNameExternal: every Sentinel, asked at its NodePort, names
// the master at a node address and the master pod's own Redis NodePort.
func checkSentinelsNameExternal(t *testing.T, ctx context.Context, out *outsideDialer, sentinels []string, master string) {
	t.Helper()
	ord, err := strconv.Atoi(master[strings.LastIndexByte(master, '-')+1:])
	if err != nil {
		t.Fatalf("master pod %q has no ordinal", master)
	}
	want := strconv.Itoa(externalRedisPort + ord)
	for _, addr := range sentinels {
		var got []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := redis.NewSentinelClient(&redis.Options{Addr: addr, Dialer: out.dial, Protocol: 2, DisableIdentity: true, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
			got, err = s.GetMasterAddrByName(ctx, "mymaster").Result()
			_ = s.Close()
			if err == nil && len(got) == 2 && out.nodes[got[0]] && got[1] == want {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("Sentinel at %s names the master at %v (%v); want a node address %v and port %s (master %s)", addr, got, err, out.nodeList(), want, master)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// waitNodePortsFree waits until no Service holds the component's fixed
// NodePorts: they are cluster-wide, and a namespace of an earlier run may
// still be terminating.
func waitNodePortsFree(t *testing.T, ctx context.Context) {
	t.Helper()
	var held []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cluster.Clientset.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		held = nil
		for _, s := range l.Items {
			for _, p := range s.Spec.Ports {
				if (p.NodePort >= externalRedisPort && p.NodePort < externalRedisPort+3) || (p.NodePort >= externalSentinelPort && p.NodePort < externalSentinelPort+3) {
					held = append(held, fmt.Sprintf("%s/%s:%d", s.Namespace, s.Name, p.NodePort))
				}
			}
		}
		return len(held) == 0, nil
	})
	if err != nil {
		t.Fatalf("the NodePorts of components/external-access are still held by %v: %v", held, err)
	}
}
