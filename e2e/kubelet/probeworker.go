package kubelet

import (
	"context"
	"net"
	"time"

	v1 "k8s.io/api/core/v1"
)

// startProbes starts the probe goroutines of a container's run: the startup
// probe alone until it succeeds, then liveness and readiness.
func (w *podWorker) startProbes(ctx context.Context, pod *v1.Pod, c *ctr, gen int) {
	t := w.target(pod, c)
	if c.st.Started == nil || !*c.st.Started {
		if c.spec.StartupProbe != nil {
			go w.probeLoop(ctx, pod, c, gen, probeStartup, c.spec.StartupProbe, t)
		}
		return
	}
	if c.spec.LivenessProbe != nil {
		go w.probeLoop(ctx, pod, c, gen, probeLiveness, c.spec.LivenessProbe, t)
	}
	if c.spec.ReadinessProbe != nil {
		go w.probeLoop(ctx, pod, c, gen, probeReadiness, c.spec.ReadinessProbe, t)
	}
}

// probeLoop probes every period until ctx ends (the run ended) and reports
// threshold crossings to the worker. Liveness starts as passing and
// readiness as failing, as on a real node.
func (w *podWorker) probeLoop(ctx context.Context, pod *v1.Pod, c *ctr, gen int, kind probeKind, p *v1.Probe, t handlerTarget) {
	s := settings(p)
	counter := probeCounter{s: s}
	switch kind {
	case probeLiveness:
		counter.known, counter.result = true, true
	case probeReadiness:
		counter.known = true
	}
	if !sleepCtx(ctx, s.initialDelay) {
		return
	}
	var lastErr string
	for {
		err := runProbe(ctx, p, t)
		if ctx.Err() != nil {
			return
		}
		if err != nil && err.Error() != lastErr {
			// Real kubelets emit Unhealthy on every failure; once per
			// distinct message keeps the event stream readable.
			w.k.event(pod, v1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", kind, err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		res, report := counter.observe(err == nil)
		if report {
			w.send(event{c: c, gen: gen, probe: kind, ok: res})
			if kind == probeStartup || (kind == probeLiveness && !res) {
				return
			}
		}
		if !sleepCtx(ctx, s.period) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// target is where the container's probes and hooks act.
func (w *podWorker) target(pod *v1.Pod, c *ctr) handlerTarget {
	netns := w.net.NetNSPath
	dial := w.k.cfg.Dialer
	if dial == nil {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialInNetNS(ctx, netns, network, addr)
		}
	}
	return handlerTarget{
		podIP: w.net.IP,
		ports: c.spec.Ports,
		dial:  dial,
		exec: func(ctx context.Context, cmd []string) error {
			return w.execIn(ctx, c, cmd, nil, nil)
		},
	}
}
