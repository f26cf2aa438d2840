package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/demo"
)

// deployment is one Redis setup applied to its own namespace.
type deployment struct {
	name      string // row label: "sentinel", "cluster", "baseline-sentinel", ...
	cluster   bool   // Redis Cluster (else master + replicas + Sentinels)
	agent     bool   // runs redis-ha-agent (role labels, /status)
	kustomize string // directory applied with kubectl apply -k
	sts       string
	selector  string
	pods      int
	ns        string
	// baseline: a seed's setup; failing to recover is a finding to print,
	// not a test failure.
	baseline bool
	// bootstrap runs once after the pods are up, for setups that need a
	// manual step (the seed's redis-cli --cluster create).
	bootstrap func(ctx context.Context, d *deployment) error
	// engine: the engine the servers run, from FAULTS_ENGINE; nil is the
	// bases' own (Redis 7.0.15).
	engine *engine
}

// engine is a server image the e2e images build, which FAULTS_ENGINE
// selects for the matrix and the chaos runs.
type engine struct {
	name    string // FAULTS_ENGINE value, e.g. valkey-8.0
	valkey  bool   // deployed through the -valkey overlays (valkey-server commands)
	image   string // repository the overlay names
	tag     string
	server  string // INFO server_name
	version string // the engine's own version field
}

var engines = []engine{
	{name: "redis-7.0", image: "redis", tag: "7.0.15", server: "redis", version: "7.0.15"},
	{name: "redis-8.0", image: "redis", tag: "8.0.2", server: "redis", version: "8.0.2"},
	{name: "valkey-8.0", valkey: true, image: "valkey/valkey", tag: "8.0.1", server: "valkey", version: "8.0.1"},
	{name: "valkey-8.1", valkey: true, image: "valkey/valkey", tag: "8.1.1", server: "valkey", version: "8.1.1"},
}

// faultsEngine is FAULTS_ENGINE's engine, or nil when it is unset.
func faultsEngine() (*engine, error) {
	v := os.Getenv("FAULTS_ENGINE")
	if v == "" {
		return nil, nil
	}
	var names []string
	for i := range engines {
		if engines[i].name == v {
			return &engines[i], nil
		}
		names = append(names, engines[i].name)
	}
	return nil, fmt.Errorf("FAULTS_ENGINE=%q is not an engine the e2e images build; want one of %s", v, strings.Join(names, ", "))
}

// withEngine points d at FAULTS_ENGINE's engine: the mode's -valkey
// overlay for Valkey, and a kustomization in a temporary directory that
// sets the image tag. The pods' INFO is checked after the deployment
// (checkEngine), so an override that did not apply fails the run.
func withEngine(t *testing.T, d *deployment) *deployment {
	e, err := faultsEngine()
	if err != nil {
		t.Fatal(err)
	}
	if e == nil {
		return d
	}
	overlay := d.kustomize
	if e.valkey {
		overlay += "-valkey"
	}
	dir := t.TempDir()
	// kustomize takes no absolute path as a resource.
	rel, err := filepath.Rel(dir, overlay)
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\nimages:\n  - name: %s\n    newTag: %q\n  - name: docker.io/%s\n    newTag: %q\n",
		rel, e.image, e.tag, dockerName(e.image), e.tag)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	d.kustomize, d.engine = dir, e
	d.name += "-" + e.name
	return d
}

func dockerName(image string) string {
	if strings.Contains(image, "/") {
		return image
	}
	return "library/" + image
}

// checkEngine asks every pod's server which engine it runs.
func checkEngine(ctx context.Context, d *deployment) error {
	if d.engine == nil {
		return nil
	}
	pods, err := waitPodsReady(ctx, d, time.Minute)
	if err != nil {
		return err
	}
	for _, p := range pods {
		c := podClient(p.Status.PodIP, 6379)
		info, err := c.Info(ctx, "server").Result()
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("INFO server of %s: %w", p.Name, err)
		}
		name := demo.ParseInfoField(info, "server_name")
		version := demo.ParseInfoField(info, name+"_version")
		if name == "" {
			name, version = "redis", demo.ParseInfoField(info, "redis_version")
		}
		if name != d.engine.server || version != d.engine.version {
			return fmt.Errorf("%s runs %s %s, want %s %s (FAULTS_ENGINE=%s)", p.Name, name, version, d.engine.server, d.engine.version, d.engine.name)
		}
	}
	return nil
}

const roleLabel = "redis-ha-agent/role"

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func sentinelMode() *deployment {
	return &deployment{name: "sentinel", agent: true, kustomize: filepath.Join(repoRoot(), "manifests", "overlays", "sentinel-3"),
		sts: "redis", selector: "app.kubernetes.io/name=redis", pods: 3}
}

func clusterMode() *deployment {
	return &deployment{name: "cluster", cluster: true, agent: true, kustomize: filepath.Join(repoRoot(), "manifests", "overlays", "cluster-6"),
		sts: "redis-cluster", selector: "app.kubernetes.io/name=redis-cluster", pods: 6}
}

func randSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// deploy applies d into a fresh namespace and waits until it is healthy.
// The namespace is deleted at cleanup (its volumes with it).
func deploy(t *testing.T, ctx context.Context, d *deployment) time.Duration {
	t.Helper()
	d.ns = strings.NewReplacer("_", "-", ".", "").Replace(d.name) + "-" + randSuffix()
	if _, err := cluster.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: d.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", d.ns, err)
	}
	t.Cleanup(func() {
		_ = cluster.Clientset.CoreV1().Namespaces().Delete(context.Background(), d.ns, metav1.DeleteOptions{})
	})
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", d.ns, "-k", d.kustomize); err != nil {
		t.Fatalf("deploy %s: %v", d.name, err)
	}
	if d.bootstrap != nil {
		if _, err := waitPodsReady(ctx, d, 3*time.Minute); err != nil {
			t.Fatalf("deploy %s: %v", d.name, err)
		}
		if err := d.bootstrap(ctx, d); err != nil {
			t.Fatalf("bootstrap %s: %v", d.name, err)
		}
	}
	if _, err := waitHealthy(ctx, d, 4*time.Minute); err != nil {
		t.Fatalf("deploy %s in %s: %v", d.name, d.ns, err)
	}
	took := time.Since(start)
	if err := checkEngine(ctx, d); err != nil {
		t.Fatalf("deploy %s: %v", d.name, err)
	}
	return took
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPodsReady waits for all pods Running and Ready, none terminating.
func waitPodsReady(ctx context.Context, d *deployment, timeout time.Duration) ([]corev1.Pod, error) {
	var pods []corev1.Pod
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := cluster.Clientset.CoreV1().Pods(d.ns).List(ctx, metav1.ListOptions{LabelSelector: d.selector})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pods = l.Items
		ready := 0
		var st []string
		for i := range pods {
			ok := pods[i].Status.Phase == corev1.PodRunning && pods[i].DeletionTimestamp == nil && podReady(&pods[i])
			if ok {
				ready++
			}
			st = append(st, fmt.Sprintf("%s ready=%v", pods[i].Name, ok))
		}
		last = strings.Join(st, ", ")
		return len(pods) == d.pods && ready == d.pods, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting %s for %d Ready pods %q in %s: %w (last: %s)", timeout, d.pods, d.selector, d.ns, err, last)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// podClient talks to one pod's Redis (or Sentinel) by IP, no retries.
func podClient(ip string, port int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: net.JoinHostPort(ip, fmt.Sprint(port)), Dialer: cluster.DialContext,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1, PoolSize: 1, Protocol: 2})
}

// waitHealthy waits until the deployment is fully healthy again and
// returns its master (sentinel mode) or the master owning slot 0 (cluster).
func waitHealthy(ctx context.Context, d *deployment, timeout time.Duration) (string, error) {
	var master, last string
	err := wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := waitPodsReady(ctx, d, 2*time.Second)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if d.cluster {
			master, err = clusterHealthy(ctx, pods)
		} else {
			master, err = sentinelHealthy(ctx, d, pods)
		}
		if err != nil {
			last = err.Error()
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("%s in %s not healthy within %s: %w (last: %s)", d.name, d.ns, timeout, err, last)
	}
	return master, nil
}

// sentinelHealthy: one master by ROLE with every replica online, every
// Sentinel naming it, and (with the agent) exactly that pod labelled master.
func sentinelHealthy(ctx context.Context, d *deployment, pods []corev1.Pod) (string, error) {
	var masters []string
	byIP := map[string]string{}
	for _, p := range pods {
		byIP[p.Status.PodIP] = p.Name
		c := podClient(p.Status.PodIP, 6379)
		v, err := c.Do(ctx, "ROLE").Slice()
		if err == nil && len(v) > 0 && v[0] == "master" {
			masters = append(masters, p.Name)
			info, err := c.Info(ctx, "replication").Result()
			if err != nil || !strings.Contains(info, fmt.Sprintf("connected_slaves:%d", d.pods-1)) || strings.Count(info, "state=online") != d.pods-1 {
				_ = c.Close()
				return "", fmt.Errorf("master %s: not all %d replicas online", p.Name, d.pods-1)
			}
		}
		_ = c.Close()
	}
	if len(masters) != 1 {
		return "", fmt.Errorf("masters by ROLE: %v, want exactly one", masters)
	}
	m := masters[0]
	for _, p := range pods {
		s := podClient(p.Status.PodIP, 26379)
		addr, err := s.Do(ctx, "SENTINEL", "get-master-addr-by-name", "mymaster").StringSlice()
		if err != nil || len(addr) != 2 {
			_ = s.Close()
			return "", fmt.Errorf("sentinel of %s: %v %v", p.Name, addr, err)
		}
		// A Sentinel that has not discovered every replica and every other
		// Sentinel yet (INFO every 10s, hello every 2s) refuses a failover
		// with NOGOODSLAVE: not healthy for a scenario yet.
		reps, rerr := s.Do(ctx, "SENTINEL", "replicas", "mymaster").Slice()
		sens, serr := s.Do(ctx, "SENTINEL", "sentinels", "mymaster").Slice()
		_ = s.Close()
		if rerr != nil || serr != nil || len(reps) < d.pods-1 || len(sens) < d.pods-1 {
			return "", fmt.Errorf("sentinel of %s knows %d replicas and %d other sentinels, want at least %d each (%v %v)", p.Name, len(reps), len(sens), d.pods-1, rerr, serr)
		}
		host := addr[0]
		if n, ok := byIP[host]; ok {
			host = n
		}
		if host != m && !strings.HasPrefix(host, m+".") {
			return "", fmt.Errorf("sentinel of %s names %s, ROLE says %s", p.Name, addr[0], m)
		}
	}
	if d.agent {
		var labelled []string
		for _, p := range pods {
			if p.Labels[roleLabel] == "master" {
				labelled = append(labelled, p.Name)
			}
		}
		if len(labelled) != 1 || labelled[0] != m {
			return "", fmt.Errorf("pods labelled master %v, ROLE says %s", labelled, m)
		}
	}
	return m, nil
}

// clusterHealthy checks every node the way DESIGN.md's trap demands:
// cluster_state:ok is not enough after IP changes, so every node's table must
// be free of fail/noaddr/handshake, and every replica's link up.
func clusterHealthy(ctx context.Context, pods []corev1.Pod) (string, error) {
	slot0 := ""
	masters := 0
	for _, p := range pods {
		c := podClient(p.Status.PodIP, 6379)
		info, err := c.ClusterInfo(ctx).Result()
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			_ = c.Close()
			return "", fmt.Errorf("%s: cluster_state not ok (%v)", p.Name, err)
		}
		nodes, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			_ = c.Close()
			return "", fmt.Errorf("%s: CLUSTER NODES: %w", p.Name, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(l)
			if len(f) < 8 {
				continue
			}
			if strings.Contains(f[2], "fail") || strings.Contains(f[2], "noaddr") || strings.Contains(f[2], "handshake") || f[7] != "connected" {
				_ = c.Close()
				return "", fmt.Errorf("%s sees %s", p.Name, l)
			}
			if strings.Contains(f[2], "myself") && strings.Contains(f[2], "master") {
				masters++
				for _, s := range f[8:] {
					if s == "0" || strings.HasPrefix(s, "0-") {
						slot0 = p.Name
					}
				}
			}
			if strings.Contains(f[2], "myself") && strings.Contains(f[2], "slave") {
				repl, err := c.Info(ctx, "replication").Result()
				if err != nil || !strings.Contains(repl, "master_link_status:up") {
					_ = c.Close()
					return "", fmt.Errorf("%s: master link not up", p.Name)
				}
			}
		}
		_ = c.Close()
	}
	if masters != len(pods)/2 || slot0 == "" {
		return "", fmt.Errorf("%d masters (want %d), slot 0 owner %q", masters, len(pods)/2, slot0)
	}
	return slot0, nil
}

// replicaOf returns a replica pod name (sentinel mode: any non-master;
// cluster mode: a replica of master, from the master's CLUSTER NODES).
func replicaOf(ctx context.Context, d *deployment, master string) (string, error) {
	pods, err := waitPodsReady(ctx, d, 10*time.Second)
	if err != nil {
		return "", err
	}
	byIP := map[string]string{}
	var mip string
	for _, p := range pods {
		byIP[p.Status.PodIP] = p.Name
		if p.Name == master {
			mip = p.Status.PodIP
		}
	}
	if !d.cluster {
		for _, p := range pods {
			if p.Name != master {
				return p.Name, nil
			}
		}
		return "", errors.New("no replica of " + master)
	}
	c := podClient(mip, 6379)
	defer c.Close()
	nodes, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("CLUSTER NODES of %s: %w", master, err)
	}
	var myID string
	lines := strings.Split(strings.TrimSpace(nodes), "\n")
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 2 && strings.Contains(f[2], "myself") {
			myID = f[0]
		}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 3 && strings.Contains(f[2], "slave") && f[3] == myID {
			ip, _, _ := strings.Cut(f[1], ":")
			if n, ok := byIP[ip]; ok {
				return n, nil
			}
		}
	}
	return "", errors.New("no replica of " + master + " in its CLUSTER NODES")
}
