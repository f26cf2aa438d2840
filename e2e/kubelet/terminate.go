package kubelet

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
)

// terminate is graceful pod deletion, in the real kubelet's order: preStop
// hooks and SIGTERM for the main containers in parallel, SIGKILL when the
// grace period ends; then running init containers; then sidecars in reverse
// order, each with what is left of the grace period (at least 2s); then the
// network and volumes; finally the pod object is deleted with grace 0.
func (w *podWorker) terminate(ctx context.Context, pod *v1.Pod) {
	grace := gracePeriod(pod)
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	deadline := time.Now().Add(grace)
	// A force deletion (the object is removed while we wait) ends the
	// grace period: stop like at shutdown.
	stopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.goneCh:
			cancel()
		case <-stopCtx.Done():
		}
	}()
	w.log.Info().Dur("grace", grace).Msg("pod deleted: stopping containers")
	for _, c := range append(append([]*ctr{}, w.init...), w.main...) {
		if c.cancel != nil {
			c.cancel()
		}
	}
	stopGroup := func(cs []*ctr, deadline time.Time) {
		var wg sync.WaitGroup
		for _, c := range cs {
			if !c.running() {
				continue
			}
			w.k.event(pod, v1.EventTypeNormal, "Killing", "Stopping container %s", c.spec.Name)
			p, t := c.proc, w.target(pod, c)
			wg.Add(1)
			go func() { defer wg.Done(); w.stopProc(stopCtx, pod, c, p, t, deadline, true) }()
		}
		wg.Wait()
	}
	stopGroup(w.main, deadline)
	var regular []*ctr
	for _, c := range w.init {
		if !c.sidecar {
			regular = append(regular, c)
		}
	}
	stopGroup(regular, deadline)
	for i := len(w.init) - 1; i >= 0; i-- {
		if c := w.init[i]; c.sidecar {
			stopGroup([]*ctr{c}, deadline)
		}
	}
	w.teardown(true)
	if ctx.Err() == nil {
		w.k.deletePod(ctx, pod)
	}
}
