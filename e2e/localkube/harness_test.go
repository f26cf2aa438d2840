package localkube_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// cluster is shared by the package's tests; TestMain owns it.
var cluster *localkube.Cluster

func TestMain(m *testing.M) {
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"}).With().Timestamp().Logger().Level(zerolog.InfoLevel)
	os.Exit(localkube.RunTests(m, localkube.Options{StateDir: os.Getenv("LOCALKUBE_TEST_STATE_DIR"), Log: log}, func(c *localkube.Cluster) { cluster = c }))
}

func newNamespace(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	_, err := cluster.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	// Pods are refused until the serviceaccount controller has created the
	// namespace's default ServiceAccount, as on any cluster.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.Clientset.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("default ServiceAccount of namespace %s: %v", name, err)
	}
	return name
}

// waitPods waits until n pods match selector and all are Running and Ready.
func waitPods(t *testing.T, ctx context.Context, ns, selector string, n int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pods = l.Items
		var states []string
		ready := 0
		for _, p := range pods {
			ok := p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && podReady(&p)
			if ok {
				ready++
			}
			states = append(states, fmt.Sprintf("%s=%s/ready=%v", p.Name, p.Status.Phase, ok))
		}
		last = strings.Join(states, " ")
		return len(pods) == n && ready == n, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d Running+Ready pods %q in %s: %v (last: %s)", n, selector, ns, err, last)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

// eventually polls fn until it succeeds or timeout passes.
func eventually(t *testing.T, ctx context.Context, what string, timeout time.Duration, fn func(ctx context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		last = fn(c)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %v (last error: %v)", what, timeout, err, last)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func exec(t *testing.T, ctx context.Context, ns, pod string, cmd ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := cluster.Exec(ctx, ns, pod, "", cmd, &out, &errOut); err != nil {
		t.Fatalf("exec %v in %s/%s: %v: %s", cmd, ns, pod, err, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// getentHost resolves name inside a pod with libc's resolver and returns
// the first address.
func getentHost(t *testing.T, ctx context.Context, ns, pod, name string) string {
	t.Helper()
	addr, _, _ := strings.Cut(exec(t, ctx, ns, pod, "getent", "hosts", name), " ")
	return addr
}

func redisStatefulSet(ns string) (*corev1.Service, *corev1.Service, *appsv1.StatefulSet) {
	labels := map[string]string{"app": "redis"}
	port := []corev1.ServicePort{{Name: "redis", Port: 6379, TargetPort: intstr.FromInt32(6379)}}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: ns},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, PublishNotReadyAddresses: true, Selector: labels, Ports: port},
	}
	clusterIP := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "redis-client", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: port},
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			ServiceName:         "redis",
			Replicas:            ptr.To[int32](3),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
							TopologyKey:   "kubernetes.io/hostname",
						}},
					}},
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					Containers: []corev1.Container{{
						Name:    "redis",
						Image:   "redis:7.0",
						Command: []string{"redis-server", "--appendonly", "yes", "--dir", "/data", "--protected-mode", "no"},
						Ports:   []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"redis-cli", "ping"}}},
							PeriodSeconds: 1,
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
	return headless, clusterIP, sts
}

// TestStatefulSetNetworkDNSStorage checks what every e2e test relies on:
// scheduling over three nodes, pod IPs, peer DNS (A and SRV), ClusterIP
// routing through kube-proxy from the cluster network and from pods, and a
// recreated pod getting a new IP but the same volume.
func TestStatefulSetNetworkDNSStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "harness-sts")
	headless, clusterIP, sts := redisStatefulSet(ns)
	for _, s := range []*corev1.Service{headless, clusterIP} {
		if _, err := cluster.Clientset.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Service %s: %v", s.Name, err)
		}
	}
	if _, err := cluster.Clientset.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create StatefulSet: %v", err)
	}
	pods := waitPods(t, ctx, ns, "app=redis", 3, 2*time.Minute)
	ips, nodes := map[string]string{}, map[string]bool{}
	for _, p := range pods {
		if p.Status.PodIP == "" || ips[p.Status.PodIP] != "" {
			t.Fatalf("pod %s has IP %q, already used by %q", p.Name, p.Status.PodIP, ips[p.Status.PodIP])
		}
		ips[p.Status.PodIP] = p.Name
		nodes[p.Spec.NodeName] = true
	}
	if len(nodes) != 3 {
		t.Fatalf("pods on nodes %v, want 3 distinct nodes", nodes)
	}
	claims, err := cluster.Clientset.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claims.Items {
		if c.Status.Phase != corev1.ClaimBound {
			t.Errorf("PVC %s is %s, want Bound", c.Name, c.Status.Phase)
		}
	}

	t.Run("DNS", func(t *testing.T) {
		domain := "redis." + ns + ".svc.cluster.local"
		// Pods are Ready before the endpoint controllers and CoreDNS have
		// caught up (seconds after an API server restart, when informers
		// back off): wait for the records, then check them exactly.
		eventually(t, ctx, "SRV records for "+domain, 30*time.Second, func(ctx context.Context) error {
			_, srvs, err := cluster.Resolver.LookupSRV(ctx, "redis", "tcp", domain)
			if err == nil && len(srvs) != 3 {
				err = fmt.Errorf("%d records", len(srvs))
			}
			return err
		})
		for _, p := range pods {
			name := p.Name + "." + domain
			// From inside a pod, through its resolv.conf (kube-dns
			// ClusterIP) and libc's resolver, as Redis resolves names: the
			// images have no dig, like the official ones.
			if got := getentHost(t, ctx, ns, "redis-0", name); got != p.Status.PodIP {
				t.Errorf("getent hosts %s in redis-0 = %q, want %s", name, got, p.Status.PodIP)
			}
			// From the test, through the cluster resolver.
			addrs, err := cluster.Resolver.LookupHost(ctx, name)
			if err != nil || len(addrs) != 1 || addrs[0] != p.Status.PodIP {
				t.Errorf("Resolver.LookupHost(%s) = %v, %v; want [%s]", name, addrs, err, p.Status.PodIP)
			}
		}
		_, srvs, err := cluster.Resolver.LookupSRV(ctx, "redis", "tcp", domain)
		if err != nil || len(srvs) != 3 {
			t.Fatalf("SRV _redis._tcp.%s = %v, %v; want 3 records", domain, srvs, err)
		}
		for _, s := range srvs {
			if s.Port != 6379 || !strings.HasPrefix(s.Target, "redis-") {
				t.Errorf("SRV record %+v, want redis-N.%s.:6379", *s, domain)
			}
		}
		// A short name through the pod's search path.
		if got := getentHost(t, ctx, ns, "redis-1", "redis-2.redis"); got != pods[2].Status.PodIP {
			t.Errorf("getent hosts redis-2.redis (search path) in redis-1 = %q, want %s", got, pods[2].Status.PodIP)
		}
	})

	t.Run("ClusterIP", func(t *testing.T) {
		svc, err := cluster.Clientset.CoreV1().Services(ns).Get(ctx, "redis-client", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// kube-proxy rejects connections until it has the endpoints.
		eventually(t, ctx, "PING through ClusterIP "+svc.Spec.ClusterIP, 30*time.Second, func(ctx context.Context) error {
			rc := redis.NewClient(&redis.Options{Addr: svc.Spec.ClusterIP + ":6379", Dialer: cluster.DialContext, MaxRetries: -1})
			defer rc.Close()
			return rc.Ping(ctx).Err()
		})
		// From the cluster network (kube-proxy's OUTPUT rules), by IP and name.
		for _, addr := range []string{svc.Spec.ClusterIP + ":6379", "redis-client." + ns + ".svc.cluster.local:6379"} {
			rc := redis.NewClient(&redis.Options{Addr: addr, Dialer: cluster.DialContext, MaxRetries: -1})
			if err := rc.Ping(ctx).Err(); err != nil {
				t.Errorf("PING %s from the cluster network: %v", addr, err)
			}
			rc.Close()
		}
		// From each pod (PREROUTING DNAT on the bridge); repeated so that
		// some connections land on the calling pod itself (hairpin).
		for _, p := range pods {
			for i := range 6 {
				if got := exec(t, ctx, ns, p.Name, "redis-cli", "-h", svc.Spec.ClusterIP, "ping"); got != "PONG" {
					t.Fatalf("redis-cli -h %s ping in %s (try %d) = %q", svc.Spec.ClusterIP, p.Name, i, got)
				}
			}
		}
	})

	t.Run("RecreatedPodKeepsVolume", func(t *testing.T) {
		old := pods[0]
		rc := redis.NewClient(&redis.Options{Addr: old.Status.PodIP + ":6379", Dialer: cluster.DialContext})
		if err := rc.Set(ctx, "harness-key", "kept", 0).Err(); err != nil {
			t.Fatalf("SET on %s (%s): %v", old.Name, old.Status.PodIP, err)
		}
		rc.Close()
		if err := cluster.DeletePod(ctx, ns, old.Name); err != nil {
			t.Fatal(err)
		}
		var fresh *corev1.Pod
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, old.Name, metav1.GetOptions{})
			if err != nil || p.UID == old.UID || p.Status.Phase != corev1.PodRunning || !podReady(p) {
				return false, nil
			}
			fresh = p
			return true, nil
		})
		if err != nil {
			t.Fatalf("%s was not recreated Running and Ready: %v", old.Name, err)
		}
		if fresh.Status.PodIP == old.Status.PodIP {
			t.Fatalf("recreated %s kept IP %s, want a new one", old.Name, old.Status.PodIP)
		}
		rc = redis.NewClient(&redis.Options{Addr: fresh.Status.PodIP + ":6379", Dialer: cluster.DialContext})
		defer rc.Close()
		got, err := rc.Get(ctx, "harness-key").Result()
		if err != nil || got != "kept" {
			t.Fatalf("GET harness-key on recreated %s (%s) = %q, %v; want \"kept\" from the same volume", old.Name, fresh.Status.PodIP, got, err)
		}
		// Redis 7 keeps its AOF in appendonlydir inside the claim's directory.
		dir := filepath.Join(cluster.VolumeDir(ns, "data-"+old.Name), "appendonlydir")
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("claim directory of %s: %v", old.Name, err)
		}
	})
}
