package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

// row is one line of the result table: (mode × fault × workload).
type row struct {
	mode, fault string
	res         workload.Result
	recovered   time.Duration // fault start → deployment healthy again
	moved       string        // fault start → another pod writable for the old master's slots
	labelMoved  string        // fault start → another pod labelled master
	overlaps    int           // instants with two writable masters
	longestOvl  time.Duration
	violations  int // overlaps past the fence deadline
	labelOvl    int
	note        string
}

// outcome is everything one scenario produced.
type outcome struct {
	rows      []row
	histories []workload.History
	timeline  workload.Timeline
	faultAt   time.Time
	master    string
}

const (
	preFault  = 3 * time.Second // traffic before the fault
	postHeal  = 3 * time.Second // traffic after the deployment is healthy again
	staleness = time.Second     // a pod sample stands for at most this long
)

func secondsSince(from, to time.Time, ok bool) string {
	if !ok {
		return "never"
	}
	return fmt.Sprintf("%.2fs", to.Sub(from).Seconds())
}

// runScenario: healthy deployment → sampler and writers → fault (blocks for
// its duration, heals) → healthy again → more traffic → read back → judge.
func runScenario(t *testing.T, d *deployment, f fault, inject func(context.Context, target) error) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute+f.runFor)
	defer cancel()
	master, err := waitHealthy(ctx, d, 4*time.Minute)
	if err != nil {
		t.Fatalf("before %s: %v", f.name, err)
	}
	replica, err := replicaOf(ctx, d, master)
	if err != nil {
		t.Fatalf("before %s: %v", f.name, err)
	}
	runCtx, stopRun := context.WithTimeout(ctx, 10*time.Minute+f.runFor)
	defer stopRun()
	// "Writable" is a probe write accepted by the pod's own redis-server,
	// never the agent's word (baselines are judged the same); in cluster
	// mode by a node claiming slots as master, for one of its slots.
	smp := &workload.Sampler{Namespace: d.ns, Selector: d.selector, RoleLabel: roleLabel, Cluster: d.cluster, ProbeWrites: true,
		Interval: 100 * time.Millisecond, Clientset: cluster.Clientset, Dial: cluster.DialContext,
		Exec: func(ctx context.Context, pod, container string, cmd []string) (string, error) {
			var out, errb strings.Builder
			err := cluster.Exec(ctx, d.ns, pod, container, cmd, &out, &errb)
			return out.String(), err
		}}
	var wg sync.WaitGroup
	var tl workload.Timeline
	wg.Add(1)
	go func() { defer wg.Done(); tl, _ = smp.Run(runCtx) }()

	prefix := fmt.Sprintf("%s:%s", f.name, randSuffix())
	specs := workloadsFor(d)
	hs := make([]workload.History, len(specs))
	var clients []redis.UniversalClient
	writeCtx, stopWrites := context.WithTimeout(runCtx, 9*time.Minute+f.runFor)
	defer stopWrites()
	var ww sync.WaitGroup
	for i, s := range specs {
		c := s.kind.fresh(d)
		clients = append(clients, c)
		w := &workload.Writer{Name: s.name(), Client: c, Mode: s.mode, Interval: writeEvery, Prefix: prefix + ":" + s.name(), WaitTimeout: waitTimeout}
		ww.Add(1)
		go func() {
			defer ww.Done()
			h, err := w.Run(writeCtx)
			if err != nil {
				t.Errorf("writer %s: %v", w.Name, err)
			}
			hs[i] = h
		}()
	}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	_ = hold(ctx, preFault)
	faultAt := time.Now()
	injectErr := inject(ctx, target{d: d, master: master, replica: replica, mark: smp.Mark})
	var recovered time.Duration
	if injectErr == nil {
		recoverWithin := 5 * time.Minute
		if d.baseline {
			recoverWithin = 2 * time.Minute // a broken baseline is a finding; don't wait all day
		}
		if _, err := waitHealthy(ctx, d, recoverWithin); err != nil {
			injectErr = err
		} else {
			recovered = time.Since(faultAt)
			smp.Mark("healthy", false)
		}
	}
	_ = hold(ctx, postHeal)
	stopWrites()
	ww.Wait()
	stopRun()
	wg.Wait()
	if injectErr != nil && !d.baseline {
		t.Errorf("%s %s: %v", d.name, f.name, injectErr)
	}

	an := workload.Analyze(tl, staleness, fenceDeadline(d))
	movedAt, _, movedOK := workload.MasterMoved(tl, faultAt, master)
	labelAt, _, labelOK := workload.LabelMoved(tl, faultAt, master)
	var longest time.Duration
	for _, o := range an.WritableOverlaps {
		longest = max(longest, o.Duration())
	}
	out := outcome{histories: hs, timeline: tl, faultAt: faultAt, master: master}
	for i, h := range hs {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
		c := specs[i].kind.fresh(d)
		present, err := workload.Readback(rctx, c, h)
		_ = c.Close()
		rcancel()
		r := row{mode: d.name, fault: f.name, recovered: recovered, moved: secondsSince(faultAt, movedAt, movedOK),
			labelMoved: secondsSince(faultAt, labelAt, labelOK), overlaps: len(an.WritableOverlaps), longestOvl: longest,
			violations: len(an.FenceViolations), labelOvl: len(an.LabelOverlaps)}
		if !d.agent {
			r.labelMoved = "n/a"
		}
		if err != nil {
			if d.baseline {
				t.Logf("%s %s %s (baseline finding): %v", d.name, f.name, h.Name, err)
			} else {
				t.Errorf("%s %s %s: %v", d.name, f.name, h.Name, err)
			}
			r.note = "read back failed: " + err.Error()
		} else {
			r.res = workload.Check(h, present)
		}
		if injectErr != nil {
			r.note = strings.TrimSpace(r.note + " fault/recovery error: " + injectErr.Error())
		}
		out.rows = append(out.rows, r)
	}
	return out
}

// assertTargets enforces the hard guarantees of issues #8 and #15 on a
// single-fault scenario: no WAIT 1-acknowledged write lost, and no window
// of two writable masters as long as the oracle can resolve
// (workload.Resolution, 50ms) or longer, at any time, nor any at all past
// the fence deadline. A shorter window inside the deadline is below what
// the oracle can tell apart from the gap between two samples of a pod
// that stops answering at a handover (seen in CI: 6-8 ms at a CLUSTER
// FAILOVER, the old master's next sample unanswered as its pod stopped);
// it is logged with its samples, not failed. Everything else is a figure,
// printed, not judged.
func assertTargets(t *testing.T, o outcome, d *deployment, f fault) {
	t.Helper()
	lossless := f.gracefulSentinel && d.agent && !d.cluster
	for _, r := range o.rows {
		switch {
		case r.res.Mode == workload.ModeWait1 && r.res.AckedLost > 0:
			t.Errorf("%s %s %s: %d WAIT 1-acknowledged writes lost (e.g. %v), want 0", r.mode, r.fault, r.res.Name, r.res.AckedLost, r.res.LostKeys)
		case lossless && r.res.AckedLost > 0:
			t.Errorf("%s %s %s: %d writes answered OK lost (e.g. %v), want 0: every pod stopped through preStop", r.mode, r.fault, r.res.Name, r.res.AckedLost, r.res.LostKeys)
		}
	}
	an := workload.Analyze(o.timeline, staleness, fenceDeadline(d))
	for _, v := range an.WritableOverlaps {
		past := slices.ContainsFunc(an.FenceViolations, func(fv workload.Interval) bool { return fv.From.Equal(v.From) })
		report, verdict := t.Errorf, "want none that long"
		switch {
		case past:
			verdict = fmt.Sprintf("past the fence deadline %s, want none", fenceDeadline(d))
		case v.Duration() < workload.Resolution:
			report, verdict = t.Logf, "below the oracle's resolution, not judged"
		}
		if d.baseline {
			report = t.Logf
		}
		report("%s %s: two writable masters %v from %s to %s (%.3fs, %.2fs after the fault; oracle resolution %s), %s; their samples around it:\n%s",
			d.name, f.name, v.Pods, v.From.Format("15:04:05.000"), v.To.Format("15:04:05.000"), v.Duration().Seconds(), v.From.Sub(o.faultAt).Seconds(),
			workload.Resolution, verdict, samplesAround(o.timeline, v))
	}
}

// samplesAround lists the samples of an overlap's pods from a staleness
// and 300ms before it (so the sample that a window holds over is listed)
// to 300ms after, one a line, for a reader to judge it.
func samplesAround(tl workload.Timeline, v workload.Interval) string {
	var b strings.Builder
	for _, s := range tl.Samples {
		if !slices.Contains(v.Pods, s.Pod) || s.At.Before(v.From.Add(-staleness-300*time.Millisecond)) || s.At.After(v.To.Add(300*time.Millisecond)) {
			continue
		}
		fmt.Fprintf(&b, "  %s %s via %s known=%t refused=%t role=%s slots=%v clusterOK=%t probed=%t ok=%t blocked=%t writable=%t\n",
			s.At.Format("15:04:05.000"), s.Pod, s.Via, s.Known, s.Refused, s.Role, s.Slots, s.ClusterOK, s.Probed, s.ProbeOK, s.Blocked, s.Writable())
	}
	return b.String()
}

func tableHeader() string {
	return "| mode | fault | workload | attempts | acked | acked lost | unacked present | WAIT 0 | errors | longest gap | master moved | label moved | recovered | 2 writable masters (longest) | past fence deadline | 2 labelled masters | note |\n" +
		"|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
}

func (r row) markdown() string {
	rec := "—"
	if r.recovered > 0 {
		rec = fmt.Sprintf("%.1fs", r.recovered.Seconds())
	}
	lost := fmt.Sprint(r.res.AckedLost)
	if r.res.AckedLost > 0 {
		lost = "**" + lost + "**"
	}
	return fmt.Sprintf("| %s | %s | %s | %d | %d | %s | %d | %d | %d | %.2fs | %s | %s | %s | %d (%.2fs) | %d | %d | %s |\n",
		r.mode, r.fault, r.res.Name, r.res.Attempts, r.res.Acked, lost, r.res.PresentUnacked, r.res.Wait0, r.res.Errors,
		r.res.LongestGap.Seconds(), r.moved, r.labelMoved, rec, r.overlaps, r.longestOvl.Seconds(), r.violations, r.labelOvl, r.note)
}

// reportDir is FAULTS_REPORT_DIR, or "" to only log.
func reportDir(t *testing.T) string {
	dir := os.Getenv("FAULTS_REPORT_DIR")
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("FAULTS_REPORT_DIR=%s: %v", dir, err)
	}
	return dir
}

func writeTable(t *testing.T, name, title string, rows []row, ran []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\nRows ran (FAULTS=%s): %s\n\n", title, faultsLevel(), strings.Join(ran, ", "))
	fmt.Fprintf(&b, "Writable: a probe write answered OK by the pod's redis-server; a window of two writable masters shorter than %s at a handover is below the oracle's resolution.\n\n", workload.Resolution)
	b.WriteString(tableHeader())
	for _, r := range rows {
		b.WriteString(r.markdown())
	}
	t.Logf("\n%s", b.String())
	if dir := reportDir(t); dir != "" {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Errorf("write %s: %v", p, err)
		}
	}
}

func faultsLevel() string {
	switch v := os.Getenv("FAULTS"); v {
	case "", "quick":
		return "quick"
	default:
		return v
	}
}
