package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

func TestSentinelFaults(t *testing.T) { runMatrix(t, withEngine(t, sentinelMode())) }

func TestClusterFaults(t *testing.T) { runMatrix(t, withEngine(t, clusterMode())) }

// runMatrix deploys the mode once and runs its faults one after another on
// that deployment; each scenario starts by waiting until it is healthy.
func runMatrix(t *testing.T, d *deployment) {
	level := faultsLevel()
	var faults []fault
	for _, f := range matrix() {
		applies := f.sentinel
		quick := f.quickSentinel
		if d.cluster {
			applies, quick = f.cluster, f.quickCluster
		}
		if applies && (level == "all" || level == "quick" && quick) {
			faults = append(faults, f)
		}
	}
	if len(faults) == 0 {
		t.Skipf("FAULTS=%s selects no %s faults (quick|all)", level, d.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	took := deploy(t, ctx, d)
	t.Logf("%s deployed and healthy in %s (namespace %s)", d.name, took.Round(time.Millisecond), d.ns)
	var rows []row
	var ran []string
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			if f.local {
				cluster.NeedsLocalNodes(t, f.name)
			}
			t.Cleanup(func() { saveLogsIfFailed(t, d) })
			o := runScenario(t, d, f, f.inject)
			rows = append(rows, o.rows...)
			ran = append(ran, f.name)
			for _, r := range o.rows {
				t.Logf("%s", r.markdown())
				if !r.res.LostFrom.IsZero() {
					t.Logf("%s: lost writes were answered %s to %s (%.2fs to %.2fs after the fault), e.g. %v", r.res.Name,
						r.res.LostFrom.Format("15:04:05.000"), r.res.LostTo.Format("15:04:05.000"),
						r.res.LostFrom.Sub(o.faultAt).Seconds(), r.res.LostTo.Sub(o.faultAt).Seconds(), r.res.LostKeys)
				}
			}
			assertTargets(t, o, d, f)
			if dir := reportDir(t); dir != "" {
				p := filepath.Join(dir, fmt.Sprintf("timeline-%s-%s.png", d.name, f.name))
				title := fmt.Sprintf("%s mode, %s (fault at %.1fs)", d.name, f.name, o.faultAt.Sub(o.timeline.Start).Seconds())
				if err := workload.PlotTimeline(p, title, o.histories, o.timeline); err != nil {
					t.Errorf("plot: %v", err)
				}
			}
		})
	}
	writeTable(t, "faults-"+d.name+".md", d.name+" mode", rows, ran)
}

// saveLogsIfFailed keeps the logs of a failed row's pods (of every row
// with FAULTS_KEEP_LOGS=1; the deployment is shared by the rows and
// deleted with its namespace) under the system's temp directory, and says
// where.
func saveLogsIfFailed(t *testing.T, d *deployment) {
	if !t.Failed() && os.Getenv("FAULTS_KEEP_LOGS") == "" {
		return
	}
	dir := filepath.Join(os.TempDir(), "redis-ha-e2e-logs", d.ns+"-"+filepath.Base(t.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.SavePodLogs(ctx, d.ns, dir); err != nil {
		t.Logf("pod logs of %s, partly saved in %s: %v", d.ns, dir, err)
		return
	}
	t.Logf("pod logs of %s saved in %s", d.ns, dir)
}
