package sidecar

import (
	"context"
	"sync"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// Announcer gives the local redis-server the names only newer engines
// announce (redisx.AnnounceSettings: Valkey's availability-zone, the
// cluster's human-readable node name) with CONFIG SET. A value set at run
// time is lost when redis-server restarts, so it is applied again for
// every new run_id; a failed CONFIG SET is retried on the next pass.
type Announcer struct {
	Cluster bool
	Zone    string
	PodName string
	Log     zerolog.Logger

	mu   sync.Mutex
	done string // run_id the settings were applied to
}

// Apply sets the engine's settings once per run of redis-server. set is
// the mode's CONFIG SET on its local server.
func (a *Announcer) Apply(ctx context.Context, e redisx.Engine, runID string, set func(ctx context.Context, param, value string) error) {
	if runID == "" || e.Name == "" {
		return
	}
	a.mu.Lock()
	done := a.done == runID
	a.mu.Unlock()
	if done {
		return
	}
	for _, s := range redisx.AnnounceSettings(e, a.Cluster, a.Zone, a.PodName) {
		if err := set(ctx, s.Param, s.Value); err != nil {
			a.Log.Warn().Err(err).Str("param", s.Param).Str("engine", e.String()).Msg("announcing this pod's name or zone failed; the next pass retries")
			return
		}
		a.Log.Info().Str("param", s.Param).Str("value", s.Value).Str("engine", e.String()).Msg("announced to redis-server")
	}
	a.mu.Lock()
	a.done = runID
	a.mu.Unlock()
}
