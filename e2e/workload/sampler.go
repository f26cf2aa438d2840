package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Sampler watches every pod of one StatefulSet: its role label (a pod
// watch, so label changes carry the time they reached us) and, every
// Interval, what Redis itself says (ROLE, or CLUSTER INFO and NODES) plus the
// agent's fencing — or, with ProbeWrites, whether the pod accepts a write.
type Sampler struct {
	Namespace string
	// Selector is the pods' label selector, e.g. app.kubernetes.io/name=redis.
	Selector  string
	RoleLabel string // e.g. redis-ha-agent/role
	// Cluster: sample CLUSTER INFO/NODES instead of ROLE.
	Cluster bool
	// AgentStatus: read "fenced" from the agent's /status on AgentPort.
	// Without an agent (baseline setups) nothing is ever fenced.
	AgentStatus bool
	AgentPort   int // default 8080
	// ProbeWrites decides "writable" by writing: every sample SETs the
	// pod's own probe key (ProbeKey) on its redis-server, directly or
	// through exec, and the pod counts as writable exactly when that was
	// answered OK. It trusts neither the agent nor ROLE; the probe keys are
	// outside any writer's key space.
	ProbeWrites bool
	RedisPort   int // default 6379
	Interval    time.Duration
	Clientset   kubernetes.Interface
	// Dial reaches pod IPs from the cluster network.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Exec runs a command in a pod's container and returns its stdout. Used
	// only when the pod can't be reached over the network (a partition):
	// exec still gets in through the node, and the pod's loopback works.
	Exec func(ctx context.Context, pod, container string, cmd []string) (string, error)

	mu sync.Mutex
	tl Timeline
}

// Mark records a moment the test caused; fault marks start fence deadlines.
func (s *Sampler) Mark(what string, fault bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tl.Marks = append(s.tl.Marks, Mark{At: time.Now(), What: what, Fault: fault})
}

func (s *Sampler) add(smp Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tl.Samples = append(s.tl.Samples, smp)
}

// Run samples until ctx ends (it must carry a deadline) and returns the
// timeline.
func (s *Sampler) Run(ctx context.Context) (Timeline, error) {
	if _, ok := ctx.Deadline(); !ok {
		return Timeline{}, errors.New("workload.Sampler.Run: context has no deadline; bound it with context.WithTimeout")
	}
	if s.AgentPort == 0 {
		s.AgentPort = 8080
	}
	if s.RedisPort == 0 {
		s.RedisPort = 6379
	}
	if s.Interval <= 0 {
		s.Interval = 100 * time.Millisecond
	}
	s.mu.Lock()
	s.tl.Start = time.Now()
	s.mu.Unlock()

	w := newPodWatch(s)
	var wg sync.WaitGroup
	started := map[string]bool{}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = s.Selector
			return s.Clientset.CoreV1().Pods(s.Namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = s.Selector
			return s.Clientset.CoreV1().Pods(s.Namespace).Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		w.update(p.Name, p.Status.PodIP, p.Labels[s.RoleLabel], p.DeletionTimestamp == nil)
		w.mu.Lock()
		first := !started[p.Name]
		started[p.Name] = true
		w.mu.Unlock()
		if first {
			wg.Add(1)
			go func() { defer wg.Done(); s.samplePod(ctx, w, p.Name) }()
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onPod,
		UpdateFunc: func(_, n any) { onPod(n) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				w.update(p.Name, "", "", false)
			}
		},
	})
	// The informer keeps going through an API outage (StopAPIServer) and
	// relists when the server is back; label events then arrive late, which
	// is the API server's view and what Services act on.
	inf.Run(ctx.Done())
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tl.End = time.Now()
	s.tl.Labels = w.events
	return s.tl, nil
}

// podWatch is the latest IP and role label per pod, and label history.
type podWatch struct {
	s      *Sampler
	mu     sync.Mutex
	ips    map[string]string
	labels map[string]string
	events []LabelEvent
}

func newPodWatch(s *Sampler) *podWatch {
	return &podWatch{s: s, ips: map[string]string{}, labels: map[string]string{}}
}

func (w *podWatch) update(pod, ip, label string, live bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ips[pod] = ip
	if !live {
		// A terminating pod leaves the Services at once (endpoints drop
		// it), so its label no longer routes traffic.
		label = ""
	}
	if old, seen := w.labels[pod]; seen && old == label {
		return
	}
	w.labels[pod] = label
	w.events = append(w.events, LabelEvent{At: time.Now(), Pod: pod, Role: label})
}

func (w *podWatch) ip(pod string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ips[pod]
}

func (s *Sampler) samplePod(ctx context.Context, w *podWatch, pod string) {
	var (
		rc     *redis.Client
		rcIP   string
		lastEx time.Time
	)
	httpc := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DialContext: s.Dial, DisableKeepAlives: true}}
	defer func() {
		if rc != nil {
			_ = rc.Close()
		}
	}()
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ip := w.ip(pod)
		if ip != rcIP {
			if rc != nil {
				_ = rc.Close()
				rc = nil
			}
			rcIP = ip
			if ip != "" {
				rc = redis.NewClient(&redis.Options{
					Addr: net.JoinHostPort(ip, fmt.Sprint(s.RedisPort)), Dialer: s.Dial,
					DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
					MaxRetries: -1, PoolSize: 1, Protocol: 2,
				})
			}
		}
		smp := Sample{At: time.Now(), Pod: pod, Cluster: s.Cluster, ClusterOK: !s.Cluster, Via: "direct"}
		ok := rc != nil && s.direct(ctx, rc, httpc, ip, &smp)
		if !ok && s.Exec != nil && time.Since(lastEx) >= 250*time.Millisecond {
			lastEx = time.Now()
			smp = Sample{At: time.Now(), Pod: pod, Cluster: s.Cluster, ClusterOK: !s.Cluster, Via: "exec"}
			s.viaExec(ctx, pod, &smp)
		}
		if ctx.Err() != nil {
			return
		}
		s.add(smp)
	}
}

func (s *Sampler) direct(ctx context.Context, rc *redis.Client, httpc *http.Client, ip string, smp *Sample) bool {
	if s.Cluster {
		info, err := rc.ClusterInfo(ctx).Result()
		if err != nil {
			return false
		}
		nodes, err := rc.ClusterNodes(ctx).Result()
		if err != nil {
			return false
		}
		return fillCluster(smp, info, nodes)
	}
	v, err := rc.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return false
	}
	smp.Role, _ = v[0].(string)
	smp.Known = true
	if s.ProbeWrites {
		smp.At = time.Now()
		err := rc.Set(ctx, ProbeKey(smp.Pod), smp.At.UnixNano(), 0).Err()
		smp.Probed, smp.ProbeOK = true, err == nil
		if err != nil && !isRedisError(err) {
			// No answer: the write's fate is unknown, as the sample's.
			smp.Known = false
			return false
		}
	}
	if s.AgentStatus {
		smp.Fenced = agentFenced(ctx, httpc, "http://"+net.JoinHostPort(ip, fmt.Sprint(s.AgentPort))+"/status")
	}
	return true
}

func fillCluster(smp *Sample, info, nodes string) bool {
	role, slots, ok := parseClusterNodes(nodes)
	if !ok {
		return false
	}
	smp.Known, smp.Role, smp.Slots = true, role, slots
	smp.ClusterOK = strings.Contains(info, "cluster_state:ok")
	return true
}

// agentFenced asks the agent; an agent that doesn't answer is taken as not
// fenced, the conservative reading for a two-masters check.
func agentFenced(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Fenced bool `json:"fenced"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return false
	}
	return st.Fenced
}

// viaExec reads the same facts from inside the pod over its loopback.
func (s *Sampler) viaExec(ctx context.Context, pod string, smp *Sample) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	port := fmt.Sprint(s.RedisPort)
	if s.Cluster {
		out, err := s.Exec(ctx, pod, "redis", []string{"sh", "-c", "redis-cli -p " + port + " cluster info && echo ===== && redis-cli -p " + port + " cluster nodes"})
		if err != nil {
			return
		}
		info, nodes, _ := strings.Cut(out, "=====")
		fillCluster(smp, info, nodes)
		return
	}
	cmd := []string{"redis-cli", "-p", port, "role"}
	if s.ProbeWrites {
		// One exec: ROLE's first line, then the probe's answer. timeout:
		// a paused master holds the SET, and the exec gives up after 1s.
		cmd = []string{"sh", "-c", fmt.Sprintf("redis-cli -p %s role | head -n 1 && timeout 1 redis-cli -p %s set %s $(date +%%s%%N)", port, port, ProbeKey(pod))}
		smp.At = time.Now()
	}
	out, err := s.Exec(ctx, pod, "redis", cmd)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	first := strings.TrimSpace(lines[0])
	if first != "master" && first != "slave" {
		return
	}
	if s.ProbeWrites {
		if len(lines) < 2 {
			return // the probe's fate is unknown
		}
		smp.Probed, smp.ProbeOK = true, strings.TrimSpace(lines[1]) == "OK"
	}
	smp.Role, smp.Known = first, true
	if s.AgentStatus {
		st, err := s.Exec(ctx, pod, "redis", []string{"curl", "-s", "-m", "1", fmt.Sprintf("http://127.0.0.1:%d/status", s.AgentPort)})
		var v struct {
			Fenced bool `json:"fenced"`
		}
		if err == nil && json.Unmarshal([]byte(st), &v) == nil {
			smp.Fenced = v.Fenced
		}
	}
}

// ProbeKey is the key a ProbeWrites sampler writes on pod: its own, so two
// pods' probes never meet in one key.
func ProbeKey(pod string) string { return "redis-ha-e2e-probe:" + pod }

// isRedisError: the server answered with an error (READONLY, NOREPLICAS,
// ...), as opposed to no answer at all.
func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
