package kubelet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// podWorker owns one pod: a single goroutine (run) makes every decision;
// process-exit watchers and probe goroutines only send it events. mu guards
// what the debug methods (Exec, KillContainer, ...) read from other
// goroutines: pod, gone and each ctr's proc and env.
type podWorker struct {
	k        *Kubelet
	uid      types.UID
	ns, name string
	dir      string
	log      zerolog.Logger
	wakeCh   chan struct{}
	events   chan event
	quit     chan struct{}   // closed when run returns
	goneCh   chan struct{}   // closed when the pod object is removed
	ctx      context.Context // run's, for stops started by the loop

	mu   sync.Mutex
	pod  *v1.Pod
	gone bool

	// Owned by run.
	net           PodNet
	sandbox       bool
	volumesReady  bool
	tokens        map[string]cachedToken
	init, main    []*ctr
	startTime     *metav1.Time
	unsupported   string
	terminal      bool
	phase         v1.PodPhase // the terminal phase, once terminal
	initialized   bool        // init containers completed once; never re-run
	written       *v1.PodStatus
	statusFailing bool
	lastEvent     map[string]string
}

// event is a container exit or a probe result, tagged with the run (gen) it
// belongs to so results of an earlier run are ignored.
type event struct {
	c      *ctr
	gen    int
	exited bool
	probe  probeKind
	ok     bool
}

func newPodWorker(k *Kubelet, pod *v1.Pod) *podWorker {
	w := &podWorker{
		k: k, uid: pod.UID, ns: pod.Namespace, name: pod.Name,
		dir:       filepath.Join(k.cfg.RootDir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		log:       k.log.With().Str("pod", pod.Namespace+"/"+pod.Name).Logger(),
		wakeCh:    make(chan struct{}, 1),
		events:    make(chan event, 64),
		quit:      make(chan struct{}),
		goneCh:    make(chan struct{}),
		pod:       pod,
		tokens:    map[string]cachedToken{},
		lastEvent: map[string]string{},
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		w.init = append(w.init, newCtr(c, pod, true))
	}
	for i := range pod.Spec.Containers {
		w.main = append(w.main, newCtr(&pod.Spec.Containers[i], pod, false))
	}
	return w
}

func (w *podWorker) update(pod *v1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) markGone() {
	w.mu.Lock()
	if !w.gone {
		close(w.goneCh)
	}
	w.gone = true
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *podWorker) latest() (*v1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

// send delivers an event unless the worker has finished.
func (w *podWorker) send(ev event) {
	select {
	case w.events <- ev:
	case <-w.quit:
	}
}

func (w *podWorker) run(ctx context.Context) {
	defer close(w.quit)
	w.ctx = ctx
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		w.log.Error().Err(err).Msg("create pod dir")
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		pod, gone := w.latest()
		switch {
		case ctx.Err() != nil:
			w.stopAll(w.k.cfg.ShutdownGrace, false)
			w.teardown(false)
			return
		case gone:
			w.log.Info().Msg("pod object removed: stopping its containers")
			w.stopAll(w.k.cfg.ShutdownGrace, false)
			w.teardown(true)
			return
		case pod.DeletionTimestamp != nil:
			w.terminate(ctx, pod)
			return
		}
		w.sync(ctx, pod)
		select {
		case <-ctx.Done():
		case <-w.wakeCh:
		case ev := <-w.events:
			w.apply(ev)
		case <-tick.C:
		}
	}
}

// sync moves the pod one step towards its spec and writes the status.
func (w *podWorker) sync(ctx context.Context, pod *v1.Pod) {
	if w.startTime == nil {
		t := nowSec()
		w.startTime = &t
	}
	if w.unsupported == "" && !w.terminal {
		if u := unsupported(pod); len(u) > 0 {
			w.unsupported = "this node agent does not support: " + strings.Join(u, "; ")
			w.k.event(pod, v1.EventTypeWarning, "Unsupported", "%s", w.unsupported)
			w.log.Warn().Str("reason", w.unsupported).Msg("pod failed")
			w.stopAll(w.k.cfg.ShutdownGrace, false)
			w.teardown(false)
		}
	}
	if w.unsupported != "" || w.terminal {
		w.writeStatus(ctx, pod)
		return
	}
	if !w.sandbox {
		net, err := w.k.cfg.Network.SetupPod(ctx, string(w.uid), w.name)
		if err != nil {
			w.warnOnce(pod, "FailedCreatePodSandBox", "set up the pod network: %v", err)
			w.writeStatus(ctx, pod)
			return
		}
		w.net, w.sandbox = net, true
		// The loopback CNI plugin's job: containers talk to themselves on
		// 127.0.0.1 (redis-cli, probes by exec).
		if out, err := exec.CommandContext(ctx, w.k.tools.nsenter, "--net="+net.NetNSPath, "--", "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			w.warnOnce(pod, "FailedCreatePodSandBox", "bring up loopback in %s: %v: %s", net.NetNSPath, err, out)
		}
		if err := writeEtcFiles(filepath.Join(w.dir, "etc"), pod, net, w.k.cfg.ClusterDomain); err != nil {
			w.warnOnce(pod, "FailedCreatePodSandBox", "write /etc files: %v", err)
		}
	}
	if err := w.syncVolumes(ctx, pod, !w.volumesReady); err != nil {
		w.warnOnce(pod, "FailedMount", "%v", err)
		if !w.volumesReady {
			w.writeStatus(ctx, pod)
			return
		}
	} else {
		w.volumesReady = true
		delete(w.lastEvent, "FailedMount")
	}
	if w.initialized || w.syncInit(ctx, pod) {
		w.initialized = true
		for _, c := range w.init {
			if c.sidecar {
				w.ensureRunning(ctx, pod, c)
			}
		}
		for _, c := range w.main {
			w.ensureRunning(ctx, pod, c)
		}
	}
	if ph := podPhase(&pod.Spec, statuses(w.init), statuses(w.main), w.initialized); ph == v1.PodSucceeded || ph == v1.PodFailed {
		w.log.Info().Str("phase", string(ph)).Msg("pod finished")
		w.terminal, w.phase = true, ph
		w.stopAll(w.k.cfg.ShutdownGrace, true)
		w.teardown(false)
	}
	w.writeStatus(ctx, pod)
}

// syncInit runs init containers in order and reports whether they are all
// done (regular ones exited 0, sidecars started and kept running).
func (w *podWorker) syncInit(ctx context.Context, pod *v1.Pod) bool {
	for _, c := range w.init {
		if c.sidecar {
			w.ensureRunning(ctx, pod, c)
			if c.st.Started == nil || !*c.st.Started {
				return false
			}
			continue
		}
		if succeeded(c.st) {
			continue
		}
		w.ensureRunning(ctx, pod, c)
		return false
	}
	return true
}

// warnOnce records a Warning event unless the same message was the last one
// for this reason (the loop retries every second).
func (w *podWorker) warnOnce(pod *v1.Pod, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if w.lastEvent[reason] == msg {
		return
	}
	w.lastEvent[reason] = msg
	w.log.Warn().Str("reason", reason).Msg(msg)
	w.k.event(pod, v1.EventTypeWarning, reason, "%s", msg)
}

func statuses(cs []*ctr) []v1.ContainerStatus {
	out := make([]v1.ContainerStatus, len(cs))
	for i, c := range cs {
		out[i] = *c.st.DeepCopy()
	}
	return out
}

// writeStatus writes the computed status when it differs from the last one
// written, retrying conflicts against a fresh copy of the pod.
func (w *podWorker) writeStatus(ctx context.Context, pod *v1.Pod) {
	view := func(p *v1.Pod) podView {
		v := podView{
			pod: p, init: statuses(w.init), main: statuses(w.main),
			sandboxReady: w.sandbox, hostIP: w.k.cfg.HostIP, startTime: w.startTime,
			unsupported: w.unsupported, now: time.Now().Truncate(time.Second),
			initialized: w.initialized, phase: w.phase,
		}
		if w.sandbox || w.terminal {
			v.podIP = w.net.IP
		}
		return v
	}
	st := computeStatus(view(pod))
	if w.written != nil && equality.Semantic.DeepEqual(*w.written, st) {
		return
	}
	cur := pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		next := cur.DeepCopy()
		next.Status = computeStatus(view(cur))
		_, err := w.k.cfg.Client.CoreV1().Pods(w.ns).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, gerr := w.k.cfg.Client.CoreV1().Pods(w.ns).Get(ctx, w.name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			if fresh.UID != w.uid {
				return nil
			}
			cur = fresh
		}
		if err == nil {
			st = next.Status
		}
		return err
	})
	if err != nil {
		// Logged once per outage: the API server may be down on purpose.
		if ctx.Err() == nil && !apierrors.IsNotFound(err) && !w.statusFailing {
			w.log.Warn().Err(err).Msg("pod status update failed; retrying every second")
		}
		w.statusFailing = true
		return
	}
	w.statusFailing = false
	w.written = &st
}

// teardown releases the pod network and, when the pod is finished for good
// (deleted), its volume contents. Logs and /etc files stay for debugging;
// PVC directories are never removed.
func (w *podWorker) teardown(removeVolumes bool) {
	if w.sandbox {
		if err := w.k.cfg.Network.TeardownPod(string(w.uid)); err != nil {
			w.log.Warn().Err(err).Msg("pod network teardown")
		}
		w.sandbox = false
	}
	if removeVolumes {
		if err := os.RemoveAll(filepath.Join(w.dir, "volumes")); err != nil {
			w.log.Warn().Err(err).Msg("remove pod volumes")
		}
	}
}

func nowSec() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }
