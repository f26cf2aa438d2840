package cluster

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

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
		limit := sidecar.StallLimit(m.cfg)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.loop(ctx) }()

		time.Sleep(3*limit + 500*time.Millisecond) // off the passes' whole seconds
		if err := m.Healthy(ctx); err != nil {
			t.Errorf("after %s of failing passes: Healthy = %v, want healthy (failing passes still finish)", 3*limit, err)
		}

		stuck.Store(true)
		time.Sleep(2 * time.Second) // the next pass has started and hangs
		last := m.passes.Get()
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
