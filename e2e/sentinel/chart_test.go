package sentinel

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

// deployChart installs charts/redis-ha-agent with its default values
// (sentinel mode, 3 pods) as release redis: rendered by charts/test's
// cmd/render, which renders with the Helm v4 SDK as `helm template` does
// (this module cannot import Helm, whose k8s.io modules are newer), and
// applied server-side like the overlays. make chart-test holds that
// rendering equal to overlays/sentinel-3; this deploys it for real.
func deployChart(t *testing.T, ctx context.Context) (*env, time.Duration) {
	t.Helper()
	return deployWith(t, ctx, "", func(ns string) error {
		goBin, err := exec.LookPath("go")
		if err != nil {
			return fmt.Errorf("the go command is not on PATH (%v): the chart is rendered with `go run ./cmd/render` in charts/test", err)
		}
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, goBin, "run", "./cmd/render", "--release", sts, "--namespace", ns)
		cmd.Dir = filepath.Join(repoRoot(), "charts", "test")
		cmd.Stdout, cmd.Stderr = &out, &errb
		// With a cold build cache this compiles Helm (minutes on 2 cores);
		// after make chart-test (make unit, before make e2e) it only links.
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("render the chart (go run ./cmd/render in %s): %v: %s", cmd.Dir, err, strings.TrimSpace(errb.String()))
		}
		t.Logf("rendered the chart with go run ./cmd/render in %s", time.Since(start).Round(time.Millisecond))
		manifest := filepath.Join(t.TempDir(), "chart.yaml")
		if err := os.WriteFile(manifest, out.Bytes(), 0o644); err != nil {
			return err
		}
		if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-f", manifest); err != nil {
			return fmt.Errorf("apply the rendered chart: %w", err)
		}
		return nil
	})
}

// TestChartGracefulDeleteMasterUnderWriter: TestGracefulDeleteMasterUnderWriter
// on the chart's install instead of the overlay's. The cold start elects
// one master (role, Lease, label and Sentinels agree), the writer's WAIT
// 1-acknowledged writes through redis-master survive deleting that master
// (preStop switchover), and the oracle's probe writes to every pod never
// find two writable masters past the fence deadline.
func TestChartGracefulDeleteMasterUnderWriter(t *testing.T) {
	ctx := context.Background()
	e, took := deployChart(t, ctx)
	old, state := e.agreed(ctx)
	if old == "" {
		t.Fatalf("no agreed master after installing the chart: %s", state)
	}
	t.Logf("chart install: master %s agreed %s after rendering began (%s)", old, took.Round(time.Millisecond), state)
	r := e.start(ctx, 5*time.Minute)
	hold(ctx, 2*time.Second)
	r.sampler.Mark("delete "+old, true)
	if err := cluster.DeletePod(ctx, e.ns, old); err != nil {
		t.Fatalf("delete master pod %s: %v", old, err)
	}
	m := e.waitMaster(ctx, time.Minute, old)
	e.waitReady(ctx, 3*time.Minute)
	hold(ctx, 2*time.Second)
	res, a, tl := r.stop(ctx, m)
	moved, _, _ := workload.LabelMoved(tl, tl.Marks[0].At, old)
	t.Logf("chart, graceful delete of %s: label moved to %s %s after the delete", old, m, moved.Sub(tl.Marks[0].At).Round(time.Millisecond))
	e.judge("chart, graceful delete", res, a)
	if res.Acked == 0 {
		t.Errorf("chart, graceful delete: no write was acknowledged, so nothing was checked")
	}
	if res.LongestGap > 5*time.Second {
		t.Errorf("chart, graceful delete: write gap %s through the master Service; the switchover should keep it near a second", res.LongestGap)
	}
}
