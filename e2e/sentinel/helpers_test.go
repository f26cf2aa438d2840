package sentinel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

const (
	roleLabel = "redis-ha-agent/role"
	selector  = "app.kubernetes.io/name=redis"
	sts       = "redis"
	pods      = 3
)

// env is one sentinel-mode deployment in its own namespace.
type env struct {
	t        *testing.T
	ns       string
	password string // "" for overlays without auth
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// deploy applies manifests/overlays/sentinel-3 unchanged into a fresh
// namespace and waits until every pod is Ready and one master is agreed.
func deploy(t *testing.T, ctx context.Context) (*env, time.Duration) {
	t.Helper()
	return deployOverlay(t, ctx, "sentinel-3", "")
}

// deployOverlay applies manifests/overlays/<overlay> in a new namespace;
// a non-empty password is first stored in the Secret redis-auth, which the
// production overlay mounts.
func deployOverlay(t *testing.T, ctx context.Context, overlay, password string) (*env, time.Duration) {
	t.Helper()
	return deployWith(t, ctx, password, func(ns string) error {
		if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", filepath.Join(repoRoot(), "manifests", "overlays", overlay)); err != nil {
			return fmt.Errorf("apply %s: %w", overlay, err)
		}
		return nil
	})
}

// deployWith creates the namespace (and the Secret redis-auth for a
// password), runs apply in it and waits as deployOverlay does.
func deployWith(t *testing.T, ctx context.Context, password string, apply func(ns string) error) (*env, time.Duration) {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e := &env{t: t, ns: "s4-" + hex.EncodeToString(b), password: password}
	cs := cluster.Clientset
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", e.ns, err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{}) })
	if password != "" {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"}, StringData: map[string]string{"password": password}}
		if _, err := cs.CoreV1().Secrets(e.ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Secret redis-auth in %s: %v", e.ns, err)
		}
	}
	start := time.Now()
	if err := apply(e.ns); err != nil {
		t.Fatal(err)
	}
	e.waitReady(ctx, 4*time.Minute)
	e.waitMaster(ctx, 2*time.Minute, "")
	return e, time.Since(start)
}

func (e *env) fqdn(pod string) string {
	return fmt.Sprintf("%s.%s-headless.%s.svc.cluster.local", pod, sts, e.ns)
}

func (e *env) pods(ctx context.Context) []corev1.Pod {
	ps, _ := e.listPods(ctx)
	return ps
}

// listPods is pods with the List error, for waits that report it.
func (e *env) listPods(ctx context.Context) ([]corev1.Pod, error) {
	l, err := cluster.Clientset.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitReady waits for all pods Running and Ready, none terminating.
func (e *env) waitReady(ctx context.Context, timeout time.Duration) {
	e.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ready := 0
		var st []string
		ps, err := e.listPods(ctx)
		if err != nil {
			last = "list pods: " + err.Error()
			return false, nil
		}
		if len(ps) == 0 {
			last = "no pods"
			if s, err := cluster.Clientset.AppsV1().StatefulSets(e.ns).Get(ctx, sts, metav1.GetOptions{}); err == nil {
				last += fmt.Sprintf(" (StatefulSet %s: replicas %d, status.replicas %d, observedGeneration %d)", s.Name, *s.Spec.Replicas, s.Status.Replicas, s.Status.ObservedGeneration)
			}
			return false, nil
		}
		for i := range ps {
			ok := ps[i].Status.Phase == corev1.PodRunning && ps[i].DeletionTimestamp == nil && podReady(&ps[i])
			if ok {
				ready++
			}
			st = append(st, fmt.Sprintf("%s ready=%v label=%q", ps[i].Name, ok, ps[i].Labels[roleLabel]))
		}
		last = strings.Join(st, ", ")
		return len(ps) == pods && ready == pods, nil
	})
	if err != nil {
		e.t.Fatalf("waiting %s for %d Ready pods in %s: %v (last: %s)", timeout, pods, e.ns, err, last)
	}
}

func (e *env) client(ip string, port int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", ip, port), Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true, Password: e.password,
		MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 2})
}

// view is what every source says about one pod.
type view struct {
	Pod, IP, Label, Role, MasterHost, SentinelNames string
	LinkUp                                          bool
}

func (e *env) views(ctx context.Context) []view {
	var out []view
	for _, p := range e.pods(ctx) {
		v := view{Pod: p.Name, IP: p.Status.PodIP, Label: p.Labels[roleLabel]}
		if v.IP != "" && p.DeletionTimestamp == nil {
			c := e.client(v.IP, 6379)
			if info, err := c.Info(ctx, "replication").Result(); err == nil {
				for _, l := range strings.Split(info, "\r\n") {
					k, val, _ := strings.Cut(l, ":")
					switch k {
					case "role":
						v.Role = val
					case "master_host":
						v.MasterHost = val
					case "master_link_status":
						v.LinkUp = val == "up"
					}
				}
			}
			c.Close()
			s := e.client(v.IP, 26379)
			if a, err := s.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster").StringSlice(); err == nil && len(a) == 2 {
				v.SentinelNames = a[0]
			}
			s.Close()
		}
		out = append(out, v)
	}
	return out
}

func (e *env) leaseHolder(ctx context.Context) string {
	l, err := cluster.Clientset.CoordinationV1().Leases(e.ns).Get(ctx, sts, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// agreed is the master every source names: the only pod labelled master,
// the Lease holder, ROLE master, every other pod its linked replica, and a
// majority of Sentinels naming its FQDN; "" while they disagree.
func (e *env) agreed(ctx context.Context) (string, string) {
	vs := e.views(ctx)
	holder := e.leaseHolder(ctx)
	state := fmt.Sprintf("lease=%s %+v", holder, vs)
	master := ""
	for _, v := range vs {
		if v.Label == "master" {
			if master != "" {
				return "", "two master labels: " + state
			}
			master = v.Pod
		}
	}
	if master == "" || holder != master || len(vs) != pods {
		return "", state
	}
	named := 0
	for _, v := range vs {
		if v.SentinelNames == e.fqdn(master) {
			named++
		}
		if v.Pod == master {
			if v.Role != "master" {
				return "", state
			}
			continue
		}
		if v.Role != "slave" || v.MasterHost != e.fqdn(master) || !v.LinkUp {
			return "", state
		}
	}
	if named <= pods/2 {
		return "", state
	}
	return master, state
}

// waitMaster waits for an agreed master other than not ("" for any).
func (e *env) waitMaster(ctx context.Context, timeout time.Duration, not string) string {
	e.t.Helper()
	var m, last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		m, last = e.agreed(ctx)
		return m != "" && m != not, nil
	})
	if err != nil {
		e.t.Fatalf("waiting %s for an agreed master (not %q) in %s: %v\nlast: %s", timeout, not, e.ns, err, last)
	}
	return m
}

// masterService is how an application without Sentinel support writes:
// through the <sts>-master Service, which follows the role label.
func (e *env) masterService() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s-master.%s.svc.cluster.local:6379", sts, e.ns), Dialer: cluster.DialContext,
		Password: e.password, Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 1})
}

// run is a writer through the master Service and a sampler over the pods,
// both running until stop.
type run struct {
	e       *env
	sampler *workload.Sampler
	cancel  context.CancelFunc
	hist    chan workload.History
	tl      chan workload.Timeline
	client  *redis.Client
}

func (e *env) start(ctx context.Context, limit time.Duration) *run {
	ctx, cancel := context.WithTimeout(ctx, limit)
	r := &run{e: e, cancel: cancel, hist: make(chan workload.History, 1), tl: make(chan workload.Timeline, 1), client: e.masterService()}
	// The oracle writes a probe key to each pod's redis-server: it trusts
	// neither the agent's fenced flag nor ROLE.
	r.sampler = &workload.Sampler{Namespace: e.ns, Selector: selector, RoleLabel: roleLabel, ProbeWrites: true, Interval: 100 * time.Millisecond,
		Clientset: cluster.Clientset, Dial: cluster.DialContext,
		Exec: func(ctx context.Context, pod, container string, cmd []string) (string, error) {
			var out, errb strings.Builder
			err := cluster.Exec(ctx, e.ns, pod, container, cmd, &out, &errb)
			return out.String(), err
		}}
	w := &workload.Writer{Name: "wait1/master-svc", Client: r.client, Mode: workload.ModeWait1, Interval: 10 * time.Millisecond, Prefix: e.ns + ":w", WaitTimeout: 500 * time.Millisecond}
	go func() { h, _ := w.Run(ctx); r.hist <- h }()
	go func() { tl, _ := r.sampler.Run(ctx); r.tl <- tl }()
	return r
}

// stop ends the run, reads every key back from master and judges it.
func (r *run) stop(ctx context.Context, master string) (workload.Result, workload.Analysis, workload.Timeline) {
	r.e.t.Helper()
	r.cancel()
	h, tl := <-r.hist, <-r.tl
	r.client.Close()
	var ip string
	for _, v := range r.e.views(ctx) {
		if v.Pod == master {
			ip = v.IP
		}
	}
	c := r.e.client(ip, 6379)
	defer c.Close()
	present, err := workload.Readback(ctx, c, h)
	if err != nil {
		r.e.t.Fatalf("read the writes back from %s: %v", master, err)
	}
	return workload.Check(h, present), workload.Analyze(tl, 500*time.Millisecond, 15*time.Second), tl
}

// judge fails the test on any acknowledged write lost or any instant with
// two pods labelled master, and logs the figures.
func (e *env) judge(what string, res workload.Result, a workload.Analysis) {
	e.t.Helper()
	e.t.Logf("%s: %d attempts, %d acknowledged (WAIT 1), %d acknowledged lost, longest write gap %s, %d label overlaps, %d writable overlaps (%d past the fence deadline)",
		what, res.Attempts, res.Acked, res.AckedLost, res.LongestGap.Round(time.Millisecond), len(a.LabelOverlaps), len(a.WritableOverlaps), len(a.FenceViolations))
	if res.Errors > 0 {
		e.t.Logf("%s: %d attempts failed, the first at %s: %s", what, res.Errors, res.FirstError.Format("15:04:05.000"), res.FirstErrorText)
	}
	if res.AckedLost > 0 {
		e.t.Errorf("%s: %d acknowledged writes lost: %v", what, res.AckedLost, res.LostKeys[:min(10, len(res.LostKeys))])
	}
	if len(a.LabelOverlaps) > 0 {
		e.t.Errorf("%s: two pods labelled master during %v", what, a.LabelOverlaps)
	}
	if len(a.FenceViolations) > 0 {
		e.t.Errorf("%s: two writable masters past the fence deadline: %v", what, a.FenceViolations)
	}
}

func hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
