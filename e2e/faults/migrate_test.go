package faults

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// The migration from Redis 7.0 to Valkey 8.1 is a rolling update: the
// -valkey overlay applied over a running deployment changes the servers'
// image and commands, and the StatefulSet controller replaces the pods one
// at a time from the highest ordinal, so the replicas of a fresh
// deployment go first and a master leaves through its preStop switchover.
// It runs as a matrix row, under the same writers and probe-write oracle:
// no instant with two writable masters, no WAIT 1-acknowledged write lost;
// afterwards every pod's INFO must report Valkey 8.1.1.

func TestSentinelMigrateToValkey(t *testing.T) { runMigration(t, sentinelMode()) }

func TestClusterMigrateToValkey(t *testing.T) { runMigration(t, clusterMode()) }

func runMigration(t *testing.T, d *deployment) {
	if e, _ := faultsEngine(); e != nil {
		t.Fatalf("FAULTS_ENGINE=%s: the migration starts from the bases' Redis 7.0.15; unset FAULTS_ENGINE", e.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	took := deploy(t, ctx, d)
	t.Logf("%s deployed on Redis 7.0.15 and healthy in %s (namespace %s)", d.name, took.Round(time.Millisecond), d.ns)
	t.Cleanup(func() { saveLogsIfFailed(t, d) })
	to := d.kustomize + "-valkey"
	f := fault{name: "migrate-to-valkey-8.1"}
	o := runScenario(t, d, f, func(ctx context.Context, tg target) error {
		tg.mark("apply "+to, true)
		if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", d.ns, "-k", to); err != nil {
			return fmt.Errorf("apply %s: %w", to, err)
		}
		return waitRollout(ctx, tg)
	})
	for _, r := range o.rows {
		t.Logf("%s", r.markdown())
	}
	assertTargets(t, o, d, f)
	for i := range engines {
		if engines[i].name == "valkey-8.1" {
			d.engine = &engines[i]
		}
	}
	if err := checkEngine(ctx, d); err != nil {
		t.Errorf("after the rollout: %v", err)
	}
	writeTable(t, "migrate-"+d.name+".md", d.name+" mode, Redis 7.0.15 → Valkey 8.1.1 rolling update", o.rows, []string{f.name})
}
