package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
)

const (
	sts      = "redis-cluster"
	selector = "app.kubernetes.io/name=redis-cluster"
)

// env is one cluster-6 deployment in its own namespace.
type env struct {
	t   *testing.T
	ns  string
	sel string // pod label selector
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// newEnv makes a fresh namespace, deleted when the test ends.
func newEnv(t *testing.T, ctx context.Context) *env {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e := &env{t: t, ns: "c5-" + hex.EncodeToString(b), sel: selector}
	cs := cluster.Clientset
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", e.ns, err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{}) })
	return e
}

func overlay() string { return filepath.Join(repoRoot(), "manifests", "overlays", "cluster-6") }

// apply applies a kustomization (manifests/overlays/cluster-6 unchanged,
// unless a test needs a flag set).
func (e *env) apply(ctx context.Context, dir string) {
	e.t.Helper()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", e.ns, "-k", dir); err != nil {
		e.t.Fatalf("apply %s: %v", dir, err)
	}
}

// deploy applies cluster-6 and waits for a healthy cluster of 6.
func deploy(t *testing.T, ctx context.Context) (*env, time.Duration) {
	t.Helper()
	e := newEnv(t, ctx)
	start := time.Now()
	e.apply(ctx, overlay())
	e.waitHealthy(ctx, 6, 5*time.Minute)
	return e, time.Since(start)
}

func (e *env) pods(ctx context.Context) []corev1.Pod {
	l, err := cluster.Clientset.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: e.sel})
	if err != nil {
		return nil
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeClient(ip string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: ip + ":6379", Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true,
		MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, PoolSize: 2})
}

// clusterDialerRetries is what README recommends to cluster clients:
// go-redis dials an address 5 times by default, and during a rolling
// restart its topology reload also tries addresses of pods that are gone
// (seen in CI on real nodes: two such dials of about 5 s each stalled a
// writer 9.4 s after every master had failed over in about 100 ms). One
// attempt per address lets the client move on to a live node.
const clusterDialerRetries = 1

func (e *env) clusterClient(ctx context.Context) *redis.ClusterClient {
	var addrs []string
	for _, p := range e.pods(ctx) {
		if p.Status.PodIP != "" {
			addrs = append(addrs, p.Status.PodIP+":6379")
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRedirects: 16,
		DialerRetries: clusterDialerRetries})
	e.t.Cleanup(func() { cc.Close() })
	return cc
}

// line is one CLUSTER NODES line.
type line struct {
	id, ip, host, master string
	flags                []string
	slots                int
}

func (l line) has(f string) bool {
	for _, x := range l.flags {
		if x == f {
			return true
		}
	}
	return false
}

func parseNodes(s string) []line {
	var out []line
	for _, raw := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(raw)
		if len(f) < 8 {
			continue
		}
		l := line{id: f[0], flags: strings.Split(f[2], ","), master: f[3]}
		addr, host, _ := strings.Cut(f[1], ",")
		hp, _, _ := strings.Cut(addr, "@")
		if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			l.ip = hp[:i]
		}
		l.host = host
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				continue
			}
			a, b, ok := strings.Cut(s, "-")
			x, _ := strconv.Atoi(a)
			y := x
			if ok {
				y, _ = strconv.Atoi(b)
			}
			l.slots += y - x + 1
		}
		out = append(out, l)
	}
	return out
}

// podView is one pod as it sees itself and the cluster.
type podView struct {
	pod, ip, nodeName string
	ready             bool
	self              line
	nodes             []line
	state             string
	masterHost        string
	linkUp            bool
	err               error
}

func (e *env) views(ctx context.Context) []podView {
	var out []podView
	for _, p := range e.pods(ctx) {
		v := podView{pod: p.Name, ip: p.Status.PodIP, nodeName: p.Spec.NodeName, ready: podReady(&p)}
		if v.ip == "" || p.DeletionTimestamp != nil {
			v.err = fmt.Errorf("no IP or terminating")
			out = append(out, v)
			continue
		}
		c := nodeClient(v.ip)
		s, err := c.ClusterNodes(ctx).Result()
		if err == nil {
			v.nodes = parseNodes(s)
			for _, l := range v.nodes {
				if l.has("myself") {
					v.self = l
				}
			}
			var info string
			if info, err = c.ClusterInfo(ctx).Result(); err == nil {
				v.state = field(info, "cluster_state")
			}
			if repl, rerr := c.Info(ctx, "replication").Result(); rerr == nil {
				v.masterHost = field(repl, "master_host")
				v.linkUp = field(repl, "master_link_status") == "up"
			}
		}
		v.err = err
		c.Close()
		out = append(out, v)
	}
	return out
}

func field(info, key string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == key {
			return v
		}
	}
	return ""
}

// healthy is the check DESIGN.md asks for after IP changes: every pod Ready,
// every node ok, every node knows exactly n nodes with no noaddr/fail flag,
// every node a replica or a master holding slots, all slots covered by 3
// masters or more, and each replica replicating from its master's current
// IP.
func healthy(vs []podView, n int) error {
	if len(vs) != n {
		return fmt.Errorf("%d pods, want %d", len(vs), n)
	}
	ipOf := map[string]string{}
	for _, v := range vs {
		if v.err != nil {
			return fmt.Errorf("%s: %v", v.pod, v.err)
		}
		ipOf[v.self.id] = v.ip
	}
	masters, slots := 0, 0
	for _, v := range vs {
		if !v.ready {
			return fmt.Errorf("%s not Ready", v.pod)
		}
		if v.state != "ok" {
			return fmt.Errorf("%s cluster_state %q", v.pod, v.state)
		}
		if len(v.nodes) != n {
			return fmt.Errorf("%s knows %d nodes, want %d", v.pod, len(v.nodes), n)
		}
		for _, l := range v.nodes {
			if l.has("noaddr") || l.has("fail") || l.has("fail?") || l.has("handshake") {
				return fmt.Errorf("%s sees %s (%s) flagged %v", v.pod, l.id, l.host, l.flags)
			}
			if want, ok := ipOf[l.id]; !ok || l.ip != want {
				return fmt.Errorf("%s sees %s (%s) at %s, its pod is at %s", v.pod, l.id, l.host, l.ip, want)
			}
		}
		if v.self.has("slave") {
			if v.masterHost != ipOf[v.self.master] || !v.linkUp {
				return fmt.Errorf("%s replicates from %s (link up %v), its master %s is at %s", v.pod, v.masterHost, v.linkUp, v.self.master, ipOf[v.self.master])
			}
		} else if v.self.slots > 0 {
			masters++
			slots += v.self.slots
		} else {
			return fmt.Errorf("%s is a master without slots: not attached yet", v.pod)
		}
	}
	if slots != 16384 || masters < 3 {
		return fmt.Errorf("%d masters hold %d slots, want 3 or more holding all 16384", masters, slots)
	}
	return nil
}

func (e *env) waitHealthy(ctx context.Context, n int, timeout time.Duration) {
	e.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last = healthy(e.views(ctx), n)
		return last == nil, nil
	})
	if err != nil {
		e.t.Fatalf("waiting %s for a healthy cluster of %d in %s: %v (last: %v)", timeout, n, e.ns, err, last)
	}
}

// shape is masters (pod -> slots) and replicas (pod -> master pod).
func shape(vs []podView) (map[string]int, map[string]string) {
	podOf := map[string]string{}
	for _, v := range vs {
		podOf[v.self.id] = v.pod
	}
	masters, replicas := map[string]int{}, map[string]string{}
	for _, v := range vs {
		if v.self.has("slave") {
			replicas[v.pod] = podOf[v.self.master]
		} else if v.self.slots > 0 {
			masters[v.pod] = v.self.slots
		}
	}
	return masters, replicas
}

// writer writes sequential keys through a ClusterClient and records which
// were acknowledged and the longest time without a successful write.
type writer struct {
	prefix string
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	acked  []int
	errs   int
	maxGap time.Duration
	gapAt  time.Time
}

// startWriter writes through a ClusterClient seeded with the pods' DNS
// names, as an application in the cluster would be configured. Seeded with
// pod IPs instead, go-redis stalled writes for 7.2 s right after a rolling
// restart had replaced the last pod (every seed address gone, each retried
// until its dial timeout), against 127 ms with names: that measures the
// client's seed list, not the failover.
func (e *env) startWriter(ctx context.Context, prefix string) *writer {
	w := &writer{prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	var addrs []string
	for i := 0; i < 6; i++ {
		addrs = append(addrs, fmt.Sprintf("%s-%d.%s-headless.%s.svc.cluster.local:6379", sts, i, sts, e.ns))
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRedirects: 16,
		DialerRetries: clusterDialerRetries})
	e.t.Cleanup(func() { cc.Close() })
	go func() {
		defer close(w.done)
		last := time.Now()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if err := cc.Set(ctx, fmt.Sprintf("%s:%d", prefix, i), i, 0).Err(); err != nil {
				w.mu.Lock()
				w.errs++
				w.mu.Unlock()
				time.Sleep(5 * time.Millisecond) // client back-off after an error
				continue
			}
			now := time.Now()
			w.mu.Lock()
			if gap := now.Sub(last); gap > w.maxGap {
				w.maxGap, w.gapAt = gap, last
			}
			w.acked = append(w.acked, i)
			w.mu.Unlock()
			last = now
		}
	}()
	return w
}

func (w *writer) finish() {
	close(w.stop)
	<-w.done
}

// verify reads every acknowledged write back; it returns how many are lost.
func (e *env) verify(ctx context.Context, w *writer) int {
	cc := e.clusterClient(ctx)
	lost := 0
	for _, i := range w.acked {
		v, err := cc.Get(ctx, fmt.Sprintf("%s:%d", w.prefix, i)).Int()
		if err != nil || v != i {
			lost++
		}
	}
	return lost
}

func writeKeys(t *testing.T, ctx context.Context, cc *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("%s:%d", prefix, i), i, 0).Err(); err != nil {
			t.Fatalf("SET %s:%d: %v", prefix, i, err)
		}
	}
}

func missingKeys(ctx context.Context, cc *redis.ClusterClient, prefix string, n int) int {
	missing := 0
	for i := 0; i < n; i++ {
		if v, err := cc.Get(ctx, fmt.Sprintf("%s:%d", prefix, i)).Int(); err != nil || v != i {
			missing++
		}
	}
	return missing
}

// hold lets a workload run for d (a load phase, not a wait for a condition).
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (e *env) leaseHolder(ctx context.Context) string {
	l, err := cluster.Clientset.CoordinationV1().Leases(e.ns).Get(ctx, sts, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// events are the reasons of the agent's Events in the namespace.
func (e *env) eventReasons(ctx context.Context) map[string]int {
	out := map[string]int{}
	l, err := cluster.Clientset.EventsV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return out
	}
	for _, ev := range l.Items {
		out[ev.Reason]++
	}
	return out
}

// events lists the agent's Events whose reason starts with prefix, with
// their time, oldest first.
func (e *env) events(ctx context.Context, prefix string) []string {
	l, err := cluster.Clientset.EventsV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].EventTime.Before(&l.Items[j].EventTime) })
	var out []string
	for _, ev := range l.Items {
		if strings.HasPrefix(ev.Reason, prefix) {
			out = append(out, fmt.Sprintf("%s %s %s: %s", ev.EventTime.Format("15:04:05.000"), ev.Regarding.Name, ev.Reason, ev.Note))
		}
	}
	return out
}
