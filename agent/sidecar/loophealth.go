package sidecar

import (
	"fmt"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// PassMark is when the reconcile loop last finished a pass, failed or not,
// for /healthz. It has its own lock so that the probe never waits on the
// mode's: a pass that holds that lock for long must not look like a healthy
// agent, nor a slow one like a dead agent.
type PassMark struct {
	mu sync.Mutex
	at time.Time // local clock, with its monotonic reading
}

func (p *PassMark) Set(t time.Time) {
	p.mu.Lock()
	p.at = t
	p.mu.Unlock()
}

func (p *PassMark) Get() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at
}

// StallLimit is how long the reconcile loop may go without finishing a pass
// before /healthz calls the agent stuck. Between two finished passes a
// healthy loop waits at most --resync-interval and then runs one pass:
// cluster mode bounds a pass by max(--resync-interval, 30s), and every call
// of a sentinel-mode pass (Redis, a Sentinel, a peer, the API server) has a
// deadline of a few seconds. Two resync intervals plus two minutes is above
// both with a wide margin. An API server outage makes passes fail, not
// stall, so it never makes the agent unhealthy: the agent must keep running
// (and fencing) while the API server is down.
func StallLimit(cfg config.Config) time.Duration {
	return 2*cfg.ResyncInterval + 2*time.Minute
}

// LoopHealth is /healthz's verdict on the reconcile loop: healthy while
// the last pass finished (or, before the first one, the loop started)
// within limit of now. Times come from the local clock; their monotonic
// readings keep a wall-clock step from looking like a stall.
func LoopHealth(now, lastPass time.Time, limit time.Duration) error {
	if since := now.Sub(lastPass); since > limit {
		return fmt.Errorf("the reconcile loop has finished no pass for %s (limit %s, 2 × --resync-interval + 2m): it is stuck; the kubelet restarts the agent container when this lasts (redis-server keeps running)",
			since.Round(time.Second), limit)
	}
	return nil
}
