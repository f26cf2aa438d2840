package sidecar

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// The settings go to each run of redis-server once: again after a restart
// (a new run_id: CONFIG SET values are lost), again after a failed CONFIG
// SET, and never to an engine that lacks them.
func TestAnnouncerOncePerRun(t *testing.T) {
	var sets []string
	fail := false
	set := func(_ context.Context, param, value string) error {
		if fail {
			return errors.New("ERR refused")
		}
		sets = append(sets, param+"="+value)
		return nil
	}
	a := &Announcer{Cluster: true, Zone: "zone-a", PodName: "redis-cluster-2", Log: zerolog.Nop()}
	valkey := redisx.Engine{Name: "valkey", Version: "8.0.1"}
	ctx := context.Background()
	both := []string{"availability-zone=zone-a", "cluster-announce-human-nodename=redis-cluster-2"}

	a.Apply(ctx, valkey, "run-a", set)
	a.Apply(ctx, valkey, "run-a", set)
	if !slices.Equal(sets, both) {
		t.Fatalf("first run: %v, want %v once", sets, both)
	}
	sets = nil
	fail = true
	a.Apply(ctx, valkey, "run-b", set)
	fail = false
	a.Apply(ctx, valkey, "run-b", set)
	if !slices.Equal(sets, both) {
		t.Errorf("restarted server, first CONFIG SET refused: %v, want %v on the retry", sets, both)
	}
	sets = nil
	a.Apply(ctx, redisx.Engine{Name: "redis", Version: "7.0.15"}, "run-c", set)
	a.Apply(ctx, valkey, "", set)
	if len(sets) != 0 {
		t.Errorf("Redis 7.0 or an unknown run: %v, want nothing", sets)
	}
}
