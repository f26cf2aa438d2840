package agent

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
)

func TestLoopHealth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	limit := stallLimit(Config{ResyncInterval: 10 * time.Second})
	cases := map[string]struct {
		reason   string
		lastPass time.Time
		now      time.Time
		wantErr  string
	}{
		"JustFinished": {
			reason:   "a pass finished a moment ago",
			lastPass: t0, now: t0.Add(time.Second),
		},
		"LongWaitAndSlowPass": {
			reason:   "a resync interval of waiting plus a cluster pass that ran into its 30s deadline is not a stall",
			lastPass: t0, now: t0.Add(10*time.Second + 30*time.Second),
		},
		"AtTheLimit": {
			reason:   "exactly the limit is still healthy",
			lastPass: t0, now: t0.Add(limit),
		},
		"PastTheLimit": {
			reason:   "no pass for longer than the limit is a stuck loop",
			lastPass: t0, now: t0.Add(limit + time.Second),
			wantErr: "finished no pass for 2m21s (limit 2m20s",
		},
		"ClockBehind": {
			reason:   "a pass dated after now (clocks compared across a wall-clock step) is not a stall",
			lastPass: t0, now: t0.Add(-time.Hour),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := loopHealth(tc.now, tc.lastPass, limit)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("%s: loopHealth = %v, want healthy", tc.reason, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("%s: loopHealth = %v, want an error containing %q", tc.reason, err, tc.wantErr)
			}
		})
	}
}

// TestClusterLoopHealth: passes that fail (redis-server refusing, as the
// API server does in an outage) keep the agent healthy however long it
// lasts; a pass stuck in a call that never returns turns /healthz
// unhealthy once the limit has passed, not before, and healthy again once
// the loop moves on.
func TestClusterLoopHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stuck atomic.Bool
		release := make(chan struct{})
		local := &fakeNode{nodes: func() ([]clusterNode, error) {
			if stuck.Load() {
				<-release // ignores the pass's deadline, as a call without one would
			}
			return nil, errors.New("dial tcp 10.0.0.1:6379: connect: connection refused")
		}}
		m := fakeClusterMode(t, 6, map[string]*fakeNode{"10.0.0.1": local})
		limit := stallLimit(m.cfg)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.loop(ctx) }()

		time.Sleep(3*limit + 500*time.Millisecond) // off the passes' whole seconds
		if err := m.Healthy(ctx); err != nil {
			t.Errorf("after %s of failing passes: Healthy = %v, want healthy (failing passes still finish)", 3*limit, err)
		}

		stuck.Store(true)
		time.Sleep(2 * time.Second) // the next pass has started and hangs
		last := m.passes.get()
		time.Sleep(time.Until(last.Add(limit - time.Second)))
		if err := m.Healthy(ctx); err != nil {
			t.Errorf("a pass stuck for %s, under the limit %s: Healthy = %v, want healthy", time.Since(last), limit, err)
		}
		time.Sleep(2 * time.Second)
		if err := m.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "finished no pass") {
			t.Errorf("a pass stuck for %s, over the limit %s: Healthy = %v, want the loop reported stuck", time.Since(last), limit, err)
		}

		stuck.Store(false)
		close(release)
		time.Sleep(time.Second)
		if err := m.Healthy(ctx); err != nil {
			t.Errorf("after the stuck pass returned: Healthy = %v, want healthy", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop returned %v", err)
		}
	})
}

// TestSentinelLoopMarksPasses: the sentinel loop marks every pass, also
// while the preStop switchover owns the roles and passes do nothing, so a
// long switchover never looks like a stuck agent.
func TestSentinelLoopMarksPasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{ResyncInterval: 10 * time.Second, RetryPeriod: 2 * time.Second, RenewDeadline: 10 * time.Second}
		m := &sentinelMode{cfg: cfg, log: zerolog.Nop(), switching: true,
			deps: Deps{Clock: clock.RealClock{}, Metrics: metrics.New("test", ModeSentinel)}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.loop(ctx, make(chan string)) }()
		time.Sleep(10*time.Minute + 500*time.Millisecond)
		if since := time.Since(m.passes.get()); since > cfg.RetryPeriod {
			t.Errorf("last pass marked %s ago, want within --retry-period %s", since, cfg.RetryPeriod)
		}
		if err := m.Healthy(ctx); err != nil {
			t.Errorf("Healthy = %v after 10 minutes of passes", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop returned %v", err)
		}
	})
}
