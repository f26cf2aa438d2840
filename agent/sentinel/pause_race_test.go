package sentinel

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
)

// pauseRecorder is a redisNode that counts CLIENT UNPAUSE; nothing else of
// it is called by executeUnfence.
type pauseRecorder struct {
	redisNode
	unpauses atomic.Int32
}

func (p *pauseRecorder) Unpause(context.Context) error {
	p.unpauses.Add(1)
	return nil
}

// A pass that was in flight when preStop began must not lift the pause
// preStop owns, whether its plan unfences or it is the first pass of a
// restarted agent (which lifts any pause a previous process left); once
// preStop is undone, passes unpause again.
func TestPassDoesNotLiftPreStopPause(t *testing.T) {
	unfence := sentinelPlan{Unfence: true, Master: 0, ReplicaOf: -1}
	for _, tc := range []struct {
		name         string
		plan         sentinelPlan
		unpausedOnce bool
	}{
		{"plan unfences", unfence, true},
		{"first pass of a restarted agent", sentinelPlan{Master: 0, ReplicaOf: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &pauseRecorder{}
			m := &sentinelMode{log: zerolog.Nop(), local: rec, unpausedOnce: tc.unpausedOnce}
			m.preStopOwnsPause = true // PreStop has begun
			if err := m.executeUnfence(context.Background(), tc.plan, true); err != nil {
				t.Fatal(err)
			}
			if n := rec.unpauses.Load(); n != 0 {
				t.Errorf("pass sent CLIENT UNPAUSE %d times during preStop, want none", n)
			}
			m.preStopOwnsPause = false // preStop undone: the pod is not being deleted
			if err := m.executeUnfence(context.Background(), tc.plan, true); err != nil {
				t.Fatal(err)
			}
			if n := rec.unpauses.Load(); n != 1 {
				t.Errorf("pass after an undone preStop sent CLIENT UNPAUSE %d times, want 1", n)
			}
		})
	}
}
