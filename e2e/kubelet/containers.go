package kubelet

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ctr is one container of the pod and its current run.
type ctr struct {
	spec     v1.Container
	init     bool
	sidecar  bool
	st       v1.ContainerStatus
	runs     int // starts so far
	proc     *proc
	env      []envVar   // environment of the current run (Exec uses it)
	launch   launchSpec // of the current run (Exec uses its credentials)
	cancel   context.CancelFunc
	probeCtx context.Context
	backoff  time.Duration
	next     time.Time // earliest restart
	killing  bool
}

func newCtr(c *v1.Container, pod *v1.Pod, init bool) *ctr {
	reason := "ContainerCreating"
	if init || len(pod.Spec.InitContainers) > 0 {
		reason = "PodInitializing"
	}
	return &ctr{
		spec: *c.DeepCopy(), init: init, sidecar: init && isSidecar(c),
		st: v1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			State:   v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason}},
			Started: ptr.To(false),
		},
	}
}

func imageID(image string) string { return "localkube://" + imageRepository(image) }

func (c *ctr) running() bool { return c.proc != nil && !c.proc.exited() }

// shouldRestart applies the pod's restartPolicy (sidecars always restart).
func (c *ctr) shouldRestart(policy v1.RestartPolicy) bool {
	t := c.st.State.Terminated
	if t == nil {
		t = c.st.LastTerminationState.Terminated
	}
	failed := t != nil && t.ExitCode != 0
	switch {
	case c.sidecar:
		return true
	case c.init:
		return failed && policy != v1.RestartPolicyNever
	case policy == v1.RestartPolicyAlways:
		return true
	case policy == v1.RestartPolicyOnFailure:
		return failed
	}
	return false
}

// ensureRunning starts a container that never ran, or restarts an exited
// one when its restart policy allows and its backoff has passed.
func (w *podWorker) ensureRunning(ctx context.Context, pod *v1.Pod, c *ctr) {
	// Running in the status until its exit event is applied, even if the
	// process is already gone: deciding on a restart before that would
	// judge the restart policy by the previous run's exit code.
	if c.st.State.Running != nil || c.running() || c.killing {
		return
	}
	if c.runs > 0 || c.st.State.Terminated != nil {
		if succeeded(c.st) && c.init && !c.sidecar {
			return
		}
		if !c.shouldRestart(pod.Spec.RestartPolicy) {
			return
		}
		if wait := time.Until(c.next); wait > 0 {
			if c.st.State.Terminated != nil {
				c.st.LastTerminationState = v1.ContainerState{Terminated: c.st.State.Terminated}
			}
			c.st.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", c.backoff, c.spec.Name, w.name, w.ns, w.uid),
			}}
			return
		}
	}
	w.start(ctx, pod, c)
}

// start runs the container once. Configuration errors leave it waiting
// (retried every sync); start errors count as a crash (exit 128), as with a
// real runtime's StartError.
func (w *podWorker) start(ctx context.Context, pod *v1.Pod, c *ctr) {
	env, err := buildEnv(&c.spec, w.envContext(pod))
	if err == nil {
		err = checkRunAsNonRoot(pod, &c.spec)
	}
	if err != nil {
		c.st.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}}
		w.warnOnce(pod, "Failed", "Error: %v", err)
		return
	}
	delete(w.lastEvent, "Failed")
	lookup := envLookup(env)
	command, args := expandAll(c.spec.Command, lookup), expandAll(c.spec.Args, lookup)
	mounts, err := w.mounts(pod, &c.spec)
	var argv []string
	if err == nil {
		argv, err = commandResolver{binaries: w.k.cfg.Binaries, inVolume: inMounts(mounts)}.resolve(c.spec.Image, command, args)
	}
	ls := w.launchSpec(pod, &c.spec, mounts)
	var p *proc
	if err == nil {
		err = w.prepareWorkingDir(&ls, &c.spec, mounts)
	}
	if err == nil && ls.UID != nil && *ls.UID != 0 && filepath.IsAbs(argv[0]) && !inMounts(mounts)(argv[0]) && !reachableByOthers(argv[0]) {
		if err = w.k.paths.ensure(binDir, false); err == nil {
			ls.BinSource, ls.BinTarget = argv[0], path.Join(binDir, path.Base(argv[0]))
			argv[0] = ls.BinTarget
		}
	}
	if err == nil {
		w.logMarker(c, argv)
		p, err = startProcess(w.k.tools, w.net.NetNSPath, ls, argv, envList(env), w.logPath(&c.spec))
	}
	w.beginRun(c)
	if err != nil {
		msg := fmt.Sprintf("failed to start container %q: %v", c.spec.Name, err)
		w.k.event(pod, v1.EventTypeWarning, "Failed", "Error: %s", msg)
		w.log.Warn().Str("container", c.spec.Name).Msg(msg)
		now := nowSec()
		c.st.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode: 128, Reason: "StartError", Message: msg, StartedAt: now, FinishedAt: now, ContainerID: c.st.ContainerID,
		}}
		w.scheduleRestart(c, 0)
		return
	}
	w.mu.Lock()
	c.proc, c.env, c.launch = p, env, ls
	w.mu.Unlock()
	started := c.spec.StartupProbe == nil
	c.st.State = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1Sec(p.started)}}
	c.st.Started = ptr.To(started)
	c.st.Ready = !c.init && started && c.spec.ReadinessProbe == nil || c.sidecar && started && c.spec.ReadinessProbe == nil
	w.k.event(pod, v1.EventTypeNormal, "Started", "Started container %s", c.spec.Name)
	w.log.Info().Str("container", c.spec.Name).Int("pid", p.pid).Int32("restarts", c.st.RestartCount).Msg("container started")

	pctx, cancel := context.WithCancel(ctx)
	c.cancel, c.probeCtx = cancel, pctx
	gen := c.runs
	go func() {
		select {
		case <-p.done:
			w.send(event{c: c, gen: gen, exited: true})
		case <-w.quit:
		}
	}()
	w.startProbes(pctx, pod, c, gen)
}

// beginRun advances the run counter, moving a previous termination to
// lastState and counting the restart.
func (w *podWorker) beginRun(c *ctr) {
	if c.runs > 0 {
		c.st.RestartCount++
	}
	if c.st.State.Terminated != nil {
		c.st.LastTerminationState = v1.ContainerState{Terminated: c.st.State.Terminated}
	}
	c.runs++
	c.killing = false
	c.st.ContainerID = fmt.Sprintf("localkube://%s-%s-%d", w.uid, c.spec.Name, c.runs)
}

// apply handles an exit or a probe result of the current run of a container.
func (w *podWorker) apply(ev event) {
	c := ev.c
	if ev.gen != c.runs {
		return
	}
	pod, _ := w.latest()
	if ev.exited {
		p := c.proc
		if c.cancel != nil {
			c.cancel()
		}
		reason := "Completed"
		if p.exitCode != 0 {
			reason = "Error"
		}
		c.st.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode: p.exitCode, Signal: int32(p.signal), Reason: reason,
			StartedAt: metav1Sec(p.started), FinishedAt: metav1Sec(p.finished), ContainerID: c.st.ContainerID,
		}}
		// A regular init container that completed counts as ready, as
		// the real kubelet reports it.
		c.st.Ready, c.st.Started = c.init && !c.sidecar && p.exitCode == 0, ptr.To(false)
		c.killing = false
		w.log.Info().Str("container", c.spec.Name).Int32("exitCode", p.exitCode).Msg("container exited")
		w.scheduleRestart(c, p.finished.Sub(p.started))
		return
	}
	switch ev.probe {
	case probeStartup:
		if ev.ok {
			c.st.Started = ptr.To(true)
			c.st.Ready = c.spec.ReadinessProbe == nil
			w.startProbes(contextOf(c), pod, c, ev.gen)
			return
		}
		w.probeKill(pod, c, "startup")
	case probeLiveness:
		if !ev.ok {
			w.probeKill(pod, c, "liveness")
		}
	case probeReadiness:
		c.st.Ready = ev.ok && c.running()
	}
}

// scheduleRestart sets the earliest restart: the first crash restarts at
// once, later ones back off 1s, 2s, 4s... up to MaxBackoff; a run longer
// than 2×MaxBackoff resets the backoff.
func (w *podWorker) scheduleRestart(c *ctr, ran time.Duration) {
	if ran > 2*w.k.cfg.MaxBackoff {
		c.backoff = 0
	}
	c.next = time.Now().Add(c.backoff)
	switch {
	case c.backoff == 0:
		c.backoff = time.Second
	case c.backoff*2 > w.k.cfg.MaxBackoff:
		c.backoff = w.k.cfg.MaxBackoff
	default:
		c.backoff *= 2
	}
	w.poke()
}

// probeKill stops a container whose liveness or startup probe failed; it
// restarts afterwards per the restart policy, like on a real node.
func (w *podWorker) probeKill(pod *v1.Pod, c *ctr, which string) {
	if c.killing || !c.running() {
		return
	}
	c.killing = true
	msg := fmt.Sprintf("Container %s failed %s probe, will be restarted", c.spec.Name, which)
	w.k.event(pod, v1.EventTypeNormal, "Killing", "%s", msg)
	w.log.Info().Str("container", c.spec.Name).Msg(msg)
	grace := gracePeriod(pod)
	if p := c.spec.LivenessProbe; which == "liveness" && p != nil && p.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
	}
	p, t := c.proc, w.target(pod, c)
	go w.stopProc(w.ctx, pod, c, p, t, time.Now().Add(grace), true)
}

// stopProc runs the preStop hook (if asked) within the deadline, then
// SIGTERM, then SIGKILL at the deadline (at least 2s after SIGTERM, the
// real kubelet's minimum).
//
// When ctx ends (the node agent shuts down) the hook is abandoned and the
// process gets ShutdownGrace after SIGTERM.
func (w *podWorker) stopProc(ctx context.Context, pod *v1.Pod, c *ctr, p *proc, t handlerTarget, deadline time.Time, preStop bool) {
	if p == nil || p.exited() {
		return
	}
	if preStop && c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		err := runHook(ctx, c.spec.Lifecycle.PreStop, t, p.done)
		cancel()
		if err != nil {
			w.k.event(pod, v1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed for container %s: %v", c.spec.Name, err)
			w.log.Warn().Err(err).Str("container", c.spec.Name).Msg("preStop hook failed")
		}
	}
	grace := time.Until(deadline)
	if grace < 2*time.Second {
		grace = 2 * time.Second
	}
	if ctx.Err() != nil {
		grace = w.k.cfg.ShutdownGrace
	}
	p.stop(ctx, grace, w.k.cfg.ShutdownGrace)
}

func gracePeriod(pod *v1.Pod) time.Duration {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// runHook runs a preStop handler; it returns early if the process exits.
func runHook(ctx context.Context, h *v1.LifecycleHandler, t handlerTarget, exited <-chan struct{}) error {
	done := make(chan error, 1)
	go func() {
		switch {
		case h.Exec != nil:
			done <- t.exec(ctx, h.Exec.Command)
		case h.HTTPGet != nil:
			done <- httpGet(ctx, h.HTTPGet, t)
		case h.Sleep != nil:
			select {
			case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
			case <-ctx.Done():
			}
			done <- nil
		default:
			done <- fmt.Errorf("unsupported handler")
		}
	}()
	select {
	case err := <-done:
		return err
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("did not finish within the grace period: %w", ctx.Err())
	}
}

// stopAll stops every running container in parallel without hooks (pod
// finished, pod force-deleted, node agent shutting down), sidecars after
// the others when ordered is set.
func (w *podWorker) stopAll(grace time.Duration, ordered bool) {
	pod, _ := w.latest()
	stop := func(cs []*ctr) {
		done := make(chan struct{}, len(cs))
		for _, c := range cs {
			if c.cancel != nil {
				c.cancel()
			}
			p, t := c.proc, w.target(pod, c)
			go func() {
				w.stopProc(context.Background(), pod, c, p, t, time.Now().Add(grace), false)
				done <- struct{}{}
			}()
		}
		for range cs {
			<-done
		}
	}
	if ordered {
		stop(w.main)
		for i := len(w.init) - 1; i >= 0; i-- {
			stop(w.init[i : i+1])
		}
		return
	}
	stop(append(append([]*ctr{}, w.main...), w.init...))
}

func contextOf(c *ctr) context.Context {
	// Probes of the current run share its context; startProbes is called
	// again after the startup probe succeeds, still within that run.
	return c.probeCtx
}

// envContext is the input of buildEnv for this pod.
func (w *podWorker) envContext(pod *v1.Pod) envContext {
	host, port, _ := strings.Cut(w.k.cfg.KubernetesService, ":")
	return envContext{
		pod: pod, podIP: w.net.IP, hostIP: w.k.cfg.HostIP, objects: w.k.objects,
		serviceHost: host, servicePort: port, hostPATH: os.Getenv("PATH"), nodeAlloc: nodeAllocatable(),
	}
}

func (w *podWorker) logPath(c *v1.Container) string {
	return filepath.Join(w.dir, c.Name+".log")
}

// logMarker separates runs in the container log.
func (w *podWorker) logMarker(c *ctr, argv []string) {
	f, err := os.OpenFile(w.logPath(&c.spec), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	_, _ = fmt.Fprintf(f, "# kubelet %s: start %q run %d: %s\n", time.Now().UTC().Format(time.RFC3339Nano), c.spec.Name, c.runs+1, strings.Join(argv, " "))
}

func metav1Sec(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

// signalAll sends sig to every running container of the pod.
func (w *podWorker) signalAll(sig syscall.Signal) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int
	for _, c := range append(append([]*ctr{}, w.init...), w.main...) {
		if c.proc != nil && !c.proc.exited() {
			n++
			if err := c.proc.signalGroup(sig); err != nil {
				return err
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("pod %s/%s has no running container", w.ns, w.name)
	}
	return nil
}
