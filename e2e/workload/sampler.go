package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	// pod's own probe key on its redis-server, directly or through exec,
	// and the pod counts as writable exactly when that was answered OK. It
	// trusts neither the agent nor ROLE; the probe keys are outside any
	// writer's key space. Sentinel mode: ProbeKey, on every pod. Cluster
	// mode: only a node that claims slots as myself,master is probed, with
	// a key hashed to the first slot it claims, so MOVED, CLUSTERDOWN or
	// NOREPLICAS mean not writable. A probe not answered within Resolution
	// while the server answers a PING (a paused server) is recorded as not
	// writable at its send time, and its answer, if one comes, as a sample
	// at the answer time.
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

	tags *slotTags // cluster probe keys, one hash tag per slot

	mu    sync.Mutex
	tl    Timeline
	kicks map[string]chan struct{} // per pod: sample now
}

const (
	// readTimeout bounds each read: ROLE, CLUSTER INFO, CLUSTER NODES.
	readTimeout = 300 * time.Millisecond
	// probeTimeout bounds the wait for a probe write's answer: a paused
	// server holds it (a CLUSTER FAILOVER pauses the old master's writes
	// until the replica took over, 5s at most).
	probeTimeout = time.Second
)

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
	if s.Cluster && s.ProbeWrites {
		s.tags = newSlotTags()
	}
	s.mu.Lock()
	s.tl.Start = time.Now()
	s.kicks = map[string]chan struct{}{}
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

// kick returns pod's channel that makes its goroutine sample at once.
func (s *Sampler) kick(pod string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.kicks[pod]
	if !ok {
		k = make(chan struct{}, 1)
		s.kicks[pod] = k
	}
	return k
}

// kickOthers makes every pod but pod sample at once: pod just turned
// writable, and what the others do right then is the evidence that tells
// a handover from two writable masters (see Resolution).
func (s *Sampler) kickOthers(pod string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, k := range s.kicks {
		if p == pod {
			continue
		}
		select {
		case k <- struct{}{}:
		default: // a kick is already pending
		}
	}
}

func (s *Sampler) samplePod(ctx context.Context, w *podWatch, pod string) {
	var (
		rc       *redis.Client
		rcIP     string
		lastEx   time.Time
		writable bool
	)
	kick := s.kick(pod)
	emit := func(smp Sample) {
		s.add(smp)
		if smp.Writable() && !writable {
			s.kickOthers(pod)
		}
		writable = smp.Writable()
	}
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
		case <-kick:
			t.Reset(s.Interval)
		}
		ip := w.ip(pod)
		if ip != rcIP {
			if rc != nil {
				_ = rc.Close()
				rc = nil
			}
			rcIP = ip
			if ip != "" {
				rc = newPodClient(net.JoinHostPort(ip, fmt.Sprint(s.RedisPort)), s.Dial)
			}
		}
		smp := Sample{At: time.Now(), Pod: pod, Cluster: s.Cluster, ClusterOK: !s.Cluster, Via: "direct"}
		ok := rc != nil && s.direct(ctx, rc, httpc, ip, &smp, emit)
		if !ok && s.Exec != nil && time.Since(lastEx) >= 250*time.Millisecond {
			lastEx = time.Now()
			smp = Sample{At: time.Now(), Pod: pod, Cluster: s.Cluster, ClusterOK: !s.Cluster, Via: "exec"}
			s.viaExec(ctx, pod, &smp, emit)
		}
		if ctx.Err() != nil {
			return
		}
		emit(smp)
	}
}

func (s *Sampler) direct(ctx context.Context, rc *redis.Client, httpc *http.Client, ip string, smp *Sample, emit func(Sample)) bool {
	read := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, readTimeout) }
	if s.Cluster {
		rctx, cancel := read()
		info, err := rc.ClusterInfo(rctx).Result()
		cancel()
		if err != nil {
			return s.refused(ctx, err, ip, smp)
		}
		rctx, cancel = read()
		nodes, err := rc.ClusterNodes(rctx).Result()
		cancel()
		if err != nil || !fillCluster(smp, info, nodes) {
			return false
		}
		if !s.probesCluster(smp) {
			return true
		}
		return s.probeDirect(ctx, rc, s.tags.clusterProbeKey(smp.Pod, smp.Slots[0].From), smp, emit)
	}
	rctx, cancel := read()
	v, err := rc.Do(rctx, "ROLE").Slice()
	cancel()
	if err != nil {
		return s.refused(ctx, err, ip, smp)
	}
	if len(v) == 0 {
		return false
	}
	smp.Role, _ = v[0].(string)
	smp.Known = true
	if s.ProbeWrites && !s.probeDirect(ctx, rc, ProbeKey(smp.Pod), smp, emit) {
		return false
	}
	if s.AgentStatus {
		smp.Fenced = agentFenced(ctx, httpc, "http://"+net.JoinHostPort(ip, fmt.Sprint(s.AgentPort))+"/status")
	}
	return true
}

// refused: the call failed without timing out (a refused dial, or the
// server closing the connection under it: a stopping redis-server), and a
// fresh dial to the pod's redis port, made now, is refused. Then smp
// records it (see Sample.Refused), timed when the refusal arrived, and is
// complete: exec, which would find no server either, is not tried. A
// timeout (an unreachable or frozen pod) is not dialled again: that would
// only delay exec. The fresh dial matters: after a few failed dials the
// client's pool returns its last dial error without dialing (up to a
// second), which is no observation.
func (s *Sampler) refused(ctx context.Context, err error, ip string, smp *Sample) bool {
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	c, err := dial(dctx, "tcp", net.JoinHostPort(ip, fmt.Sprint(s.RedisPort)))
	if err == nil {
		_ = c.Close()
		return false
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	smp.At, smp.Refused = time.Now(), true
	return true
}

// newPodClient is the sampler's client for one pod. Each call carries
// its own deadline (readTimeout or probeTimeout); ReadTimeout is only the
// upper bound. Two connections: a PING beside a held probe.
func newPodClient(addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, Dialer: dial,
		DialTimeout: readTimeout, ReadTimeout: probeTimeout, WriteTimeout: readTimeout, ContextTimeoutEnabled: true,
		MaxRetries: -1, PoolSize: 2, Protocol: 2,
		// One dial per call: a refused port is seen at once (Sample.Refused).
		DialerRetries: 1,
	})
}

// probesCluster: a cluster node is probed when it claims slots as master;
// any other node takes writes for no slot.
func (s *Sampler) probesCluster(smp *Sample) bool {
	return s.ProbeWrites && smp.Role == "master" && len(smp.Slots) > 0
}

// probeDirect SETs key and records the answer in smp, timed at the send.
// A probe not answered within Resolution while the server answers a PING
// on another connection is held (a paused master: CLUSTER FAILOVER, CLIENT
// PAUSE WRITE): a not-writable sample is emitted at the send time. If the
// PING gets no answer either (a frozen or starved server), the pod is
// unknown from the send, as for any probe without an answer. Either way
// smp then takes the answer's time: a write answered OK after a hold was
// taken when the hold ended. A probe answered before the PING was merely
// slow and is judged conservatively: OK from its send, a refusal from its
// answer. No answer at all leaves smp unknown (false).
func (s *Sampler) probeDirect(ctx context.Context, rc *redis.Client, key string, smp *Sample, emit func(Sample)) bool {
	sent := time.Now()
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	answer := make(chan error, 1)
	go func() { answer <- rc.Set(pctx, key, sent.UnixNano(), 0).Err() }()
	smp.At = sent
	held := time.NewTimer(Resolution)
	defer held.Stop()
	var err error
	select {
	case err = <-answer:
	case <-held.C:
		rctx, rcancel := context.WithTimeout(ctx, readTimeout)
		defer rcancel()
		read := make(chan bool, 1)
		go func() { read <- rc.Ping(rctx).Err() == nil }()
		pinged := false
		select {
		case err = <-answer: // before the PING: slow, not held
		case ok := <-read:
			pinged = true
			if ok {
				emit(blocked(*smp))
			} else {
				emit(unanswered(*smp))
			}
			err = <-answer
		}
		if pinged || err != nil {
			smp.At = time.Now()
		}
	}
	smp.Probed, smp.ProbeOK = true, err == nil
	if err != nil && !isRedisError(err) {
		smp.Known = false // the write's fate is unknown, as the sample's
		return false
	}
	return true
}

// blocked is smp as seen while the server holds its probe and answers
// reads: not writable, and evidence of it.
func blocked(smp Sample) Sample {
	smp.Probed, smp.ProbeOK, smp.Blocked = true, false, true
	return smp
}

// unanswered is smp as seen while its probe has no answer and nothing
// says why: unknown, so not writable, but no evidence.
func unanswered(smp Sample) Sample {
	smp.Known, smp.Probed, smp.ProbeOK = false, true, false
	return smp
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
func (s *Sampler) viaExec(ctx context.Context, pod string, smp *Sample, emit func(Sample)) {
	port := fmt.Sprint(s.RedisPort)
	if s.Cluster {
		out, err := s.execFor(ctx, time.Second, pod, []string{"sh", "-c", "redis-cli -p " + port + " cluster info && echo ===== && redis-cli -p " + port + " cluster nodes"})
		if err != nil {
			return
		}
		info, nodes, _ := strings.Cut(out, "=====")
		if !fillCluster(smp, info, nodes) || !s.probesCluster(smp) {
			return
		}
		sent := time.Now()
		out, err = s.execFor(ctx, probeTimeout+time.Second, pod, []string{"sh", "-c", probeScript(port, s.tags.clusterProbeKey(pod, smp.Slots[0].From), sent)})
		if err != nil {
			smp.Known = false
			return
		}
		recordExecProbe(smp, sent, time.Now(), out, emit)
		return
	}
	if !s.ProbeWrites {
		out, err := s.execFor(ctx, time.Second, pod, []string{"redis-cli", "-p", port, "role"})
		if err != nil {
			return
		}
		if role := firstLine(out); role == "master" || role == "slave" {
			smp.Role, smp.Known = role, true
			s.execFenced(ctx, pod, smp)
		}
		return
	}
	// One exec: ROLE's first line, then the probe.
	sent := time.Now()
	out, err := s.execFor(ctx, probeTimeout+time.Second, pod, []string{"sh", "-c", fmt.Sprintf("redis-cli -p %s role | head -n 1 && echo ===== && ", port) + probeScript(port, ProbeKey(pod), sent)})
	if err != nil {
		return
	}
	roleOut, probeOut, _ := strings.Cut(out, "=====")
	role := firstLine(roleOut)
	if role != "master" && role != "slave" {
		return
	}
	smp.Role, smp.Known = role, true
	if recordExecProbe(smp, sent, time.Now(), probeOut, emit) {
		s.execFenced(ctx, pod, smp)
	}
}

func (s *Sampler) execFor(ctx context.Context, d time.Duration, pod string, cmd []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return s.Exec(ctx, pod, "redis", cmd)
}

func (s *Sampler) execFenced(ctx context.Context, pod string, smp *Sample) {
	if !s.AgentStatus {
		return
	}
	st, err := s.execFor(ctx, time.Second, pod, []string{"curl", "-s", "-m", "1", fmt.Sprintf("http://127.0.0.1:%d/status", s.AgentPort)})
	var v struct {
		Fenced bool `json:"fenced"`
	}
	if err == nil && json.Unmarshal([]byte(st), &v) == nil {
		smp.Fenced = v.Fenced
	}
}

func firstLine(out string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(line)
}

// probeScript SETs key through one redis-cli inside the pod, between two
// TIMEs, so the server's own clock says when it took the SET up and
// when it answered it; the exec's and redis-cli's start-up time (hundreds
// of milliseconds on a loaded node) is no part of that. timeout matches
// probeTimeout; the exit status is always 0 (redis-cli's for an error
// answer, or timeout's, would hide the output).
func probeScript(port, key string, sent time.Time) string {
	return fmt.Sprintf(`printf 'TIME\nSET %s %d\nTIME\n' | timeout %d redis-cli -p %s 2>&1 || true`, key, sent.UnixNano(), int(probeTimeout.Seconds()), port)
}

// execProbe is probeScript's output.
type execProbe struct {
	before, after time.Time // the server's TIME around the SET; after is zero without an answer
	answer        string    // "" when no answer came within probeTimeout
}

// parseProbeScript reads probeScript's output: TIME (two lines), the SET's
// answer, TIME. ok is false when not even the first TIME came back.
func parseProbeScript(out string) (p execProbe, ok bool) {
	var lines []string // redis-cli follows an error answer with an empty line
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	serverTime := func(i int) (time.Time, bool) {
		if len(lines) < i+2 {
			return time.Time{}, false
		}
		sec, err1 := strconv.ParseInt(lines[i], 10, 64)
		usec, err2 := strconv.ParseInt(lines[i+1], 10, 64)
		return time.Unix(sec, usec*1000), err1 == nil && err2 == nil
	}
	if p.before, ok = serverTime(0); !ok {
		return execProbe{}, false
	}
	if len(lines) > 2 {
		p.answer = lines[2]
		p.after, _ = serverTime(3)
	}
	return p, true
}

// recordExecProbe is probeDirect for a probe sent through exec between
// sent and returned. When the server's clock agrees with ours (its TIME
// falls between the two, as on nodes that share this machine's clock), a
// probe answered more than Resolution after the server's first TIME is
// emitted as unknown from that TIME (redis-cli itself may have been slow
// to send it, so it is no evidence of a hold), and the answer is timed
// when the server gave it. Otherwise the sample is timed at sent, the
// conservative reading: an OK then stands for the whole hold. It reports
// whether an answer came.
func recordExecProbe(smp *Sample, sent, returned time.Time, out string, emit func(Sample)) bool {
	p, ok := parseProbeScript(out)
	smp.At = sent
	if !ok {
		smp.Known = false
		return false
	}
	if !p.before.Before(sent) && !p.before.After(returned) {
		smp.At = p.before
		if p.answer == "" || p.after.IsZero() || p.after.Sub(p.before) > Resolution {
			emit(unanswered(*smp))
			if !p.after.IsZero() {
				smp.At = p.after
			}
		}
	}
	if p.answer == "" {
		smp.Known = false // no answer within probeTimeout
		return false
	}
	smp.Probed, smp.ProbeOK = true, p.answer == "OK"
	return true
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
