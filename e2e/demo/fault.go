package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

// FaultRun is what one fault under load looked like: every write the
// client attempted, the pods sampled every ~100 ms, and the instants that
// frame it.
type FaultRun struct {
	T0        time.Time // the fault was injected
	Moved     time.Time // the awaited change was first seen (zero: never)
	Recovered time.Time // the StatefulSet was healthy again (zero: never)
	History   workload.History
	Result    workload.Result
	// OKLost counts writes answered OK (whatever WAIT said) that are
	// missing afterwards.
	OKLost  int
	Samples []Sample
}

// faultSpec describes one fault: what to inject, which change proves it
// took effect, and how to tell the StatefulSet is healthy again.
type faultSpec struct {
	Env       Env
	Namespace string
	STS       string
	Client    redis.UniversalClient // the writer's client
	Prefix    string
	Sentinels bool // sample each pod's Sentinel too
	Inject    func(ctx context.Context) error
	Moved     func(ctx context.Context) error // nil once the change happened; nil func: no change awaited
	// AfterMoved runs once the change was seen (e.g. thaw a frozen pod).
	AfterMoved func(ctx context.Context) error
	Healthy    func(ctx context.Context) error // nil when recovered
	// StableFor is how long Healthy must hold without a break to count as
	// recovered: a crashed pod that restarts at once looks healthy before
	// Sentinel or Redis Cluster have even reacted.
	StableFor time.Duration
	Timeout   time.Duration
}

// runFault writes through s.Client every 20 ms while sampling the pods,
// injects the fault after a second of normal traffic, waits for the change
// and the recovery, keeps writing one more second, then reads every key
// back through a fresh client from newClient.
func runFault(ctx context.Context, s faultSpec, readback func() redis.UniversalClient) (FaultRun, error) {
	var run FaultRun
	wctx, cancel := context.WithTimeout(ctx, s.Timeout+30*time.Second)
	defer cancel()
	sampler := &Sampler{Env: s.Env, Namespace: s.Namespace, STS: s.STS, Sentinels: s.Sentinels}
	sdone := make(chan struct{})
	go func() { sampler.Run(wctx); close(sdone) }()
	w := &workload.Writer{Name: s.Prefix, Client: s.Client, Mode: workload.ModeWait1, Interval: 20 * time.Millisecond, Prefix: s.Prefix, WaitTimeout: 500 * time.Millisecond}
	type res struct {
		h   workload.History
		err error
	}
	wdone := make(chan res, 1)
	go func() { h, err := w.Run(wctx); wdone <- res{h, err} }()
	stop := func() (workload.History, error) {
		cancel()
		<-sdone
		r := <-wdone
		run.Samples = sampler.Samples()
		return r.h, r.err
	}

	// A second of normal traffic first, so the timeline has a baseline.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		_, _ = stop()
		return run, ctx.Err()
	}
	run.T0 = time.Now()
	if err := s.Inject(ctx); err != nil {
		_, _ = stop()
		return run, err
	}
	var stepErr error
	if s.Moved != nil {
		stepErr = poll(ctx, "the fault to take effect", s.Timeout, 100*time.Millisecond, s.Moved)
		if stepErr == nil {
			run.Moved = time.Now()
		}
	}
	if s.AfterMoved != nil {
		// Also after a failed wait: a frozen pod must not stay frozen.
		if err := s.AfterMoved(ctx); err != nil && stepErr == nil {
			stepErr = err
		}
	}
	if stepErr == nil {
		run.Recovered, stepErr = waitStable(ctx, s.Timeout, s.StableFor, s.Healthy)
	}
	if stepErr == nil {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	h, werr := stop()
	run.History = h
	if werr != nil {
		return run, werr
	}
	if stepErr != nil {
		return run, stepErr
	}
	rc := readback()
	defer rc.Close()
	present, err := readBackWithRetry(ctx, rc, h)
	if err != nil {
		return run, err
	}
	run.Result = workload.Check(h, present)
	for _, o := range h.Ops {
		if _, ok := present[o.Key]; o.OK && !ok {
			run.OKLost++
		}
	}
	return run, nil
}

// readBackWithRetry tolerates a client that still has to find the new
// topology (a cluster client's first MOVED, a Service endpoint update).
func readBackWithRetry(ctx context.Context, c redis.UniversalClient, h workload.History) (map[string]string, error) {
	var present map[string]string
	err := poll(ctx, fmt.Sprintf("reading back %d keys", len(h.Keys())), 30*time.Second, 500*time.Millisecond, func(ctx context.Context) error {
		var err error
		present, err = workload.Readback(ctx, c, h)
		return err
	})
	return present, err
}

// waitStable polls healthy until it has held for stable without a break and
// returns when that streak began.
func waitStable(ctx context.Context, timeout, stable time.Duration, healthy func(context.Context) error) (time.Time, error) {
	var since time.Time
	err := poll(ctx, fmt.Sprintf("recovery (healthy for %s in a row)", stable), timeout, 250*time.Millisecond, func(ctx context.Context) error {
		if err := healthy(ctx); err != nil {
			since = time.Time{}
			return err
		}
		if since.IsZero() {
			since = time.Now()
		}
		if d := time.Since(since); d < stable {
			return fmt.Errorf("healthy for %s so far", d.Round(time.Millisecond))
		}
		return nil
	})
	return since, err
}
