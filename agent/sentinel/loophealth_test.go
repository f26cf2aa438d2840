package sentinel

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// TestSentinelLoopMarksPasses: the sentinel loop marks every pass, also
// while the preStop switchover owns the roles and passes do nothing, so a
// long switchover never looks like a stuck agent.
func TestSentinelLoopMarksPasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Config{ResyncInterval: 10 * time.Second, RetryPeriod: 2 * time.Second, RenewDeadline: 10 * time.Second}
		m := &sentinelMode{cfg: cfg, log: zerolog.Nop(), switching: true,
			deps: sidecar.Deps{Clock: clock.RealClock{}, Metrics: metrics.New("test", config.ModeSentinel)}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.loop(ctx, make(chan string)) }()
		time.Sleep(10*time.Minute + 500*time.Millisecond)
		if since := time.Since(m.passes.Get()); since > cfg.RetryPeriod {
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
