package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

// The benchmarks measure minute-long scenarios, which Go's benchmark
// harness does not fit: they are tests that print figures, gated by BENCH=1
// (`make bench`), each running ours and the seed's baseline one after the
// other on the same local cluster in the same run.

func benchGate(t *testing.T) {
	if os.Getenv("BENCH") != "1" {
		t.Skip("benchmarks run with BENCH=1 (make bench)")
	}
}

func baselineSentinel() *deployment {
	return &deployment{name: "baseline-sentinel", kustomize: filepath.Join(repoRoot(), "e2e", "testdata", "baseline-sentinel"),
		sts: "redis", selector: "app.kubernetes.io/name=redis", pods: 3, baseline: true}
}

// baselineCluster is seed 002's manifest verbatim (update-node.sh seds only
// the myself line) plus its manual `redis-cli --cluster create`, done by the
// test the moment all pods run — a best-case human.
func baselineCluster() *deployment {
	return &deployment{name: "baseline-cluster", cluster: true, kustomize: filepath.Join(repoRoot(), "e2e", "testdata", "seed002"),
		sts: "redis-cluster", selector: "app=redis-cluster", pods: 6, baseline: true,
		bootstrap: func(ctx context.Context, d *deployment) error {
			pods, err := waitPodsReady(ctx, d, 3*time.Minute)
			if err != nil {
				return err
			}
			args := []string{"redis-cli", "--cluster", "create"}
			for _, p := range pods {
				args = append(args, p.Status.PodIP+":6379")
			}
			args = append(args, "--cluster-replicas", "1", "--cluster-yes")
			var out, errb strings.Builder
			if err := cluster.Exec(ctx, d.ns, pods[0].Name, "redis", args, &out, &errb); err != nil {
				return fmt.Errorf("%v: %v: %s%s", args, err, out.String(), errb.String())
			}
			return nil
		}}
}

type benchCase struct {
	name   string
	inject func(ctx context.Context, tg target) error
}

func sentinelFailover(ctx context.Context, tg target) error {
	tg.mark("SENTINEL FAILOVER", true)
	pods, err := waitPodsReady(ctx, tg.d, 10*time.Second)
	if err != nil {
		return err
	}
	s := podClient(pods[len(pods)-1].Status.PodIP, 26379)
	defer s.Close()
	return s.Do(ctx, "SENTINEL", "FAILOVER", "mymaster").Err()
}

func killMaster(ctx context.Context, tg target) error {
	tg.mark("SIGKILL "+tg.master, true)
	return cluster.KillPod(tg.d.ns, tg.master)
}

func deleteMaster(ctx context.Context, tg target) error {
	tg.mark("delete "+tg.master, true)
	return cluster.DeletePod(ctx, tg.d.ns, tg.master)
}

func deleteAll(ctx context.Context, tg target) error {
	tg.mark("delete all pods", true)
	return cluster.DeleteAllPods(ctx, tg.d.ns, tg.d.sts)
}

// benchFigures are one setup's results, by metric.
type benchFigures map[string]string

func TestBenchSentinel(t *testing.T) {
	cluster.NeedsLocalNodes(t, "SIGKILL and the footprint read from /proc")
	benchGate(t)
	ours, base := sentinelMode(), baselineSentinel()
	figs := map[string]benchFigures{}
	for _, d := range []*deployment{base, ours} {
		planned := benchCase{"planned switchover (delete master pod: preStop)", deleteMaster}
		if d.baseline {
			planned = benchCase{"planned switchover (SENTINEL FAILOVER)", sentinelFailover}
		}
		figs[d.name] = runBench(t, d, "wait1/sentinel-client", []benchCase{
			planned,
			{"unplanned failover (SIGKILL master)", killMaster},
			{"full restart (delete all pods)", deleteAll},
		}, "redis-ha-agent")
	}
	writeBench(t, "bench-sentinel.md", "Sentinel mode: redis-ha-agent vs the seeds' Sentinel setup (000/004 style)", ours, base, figs)
}

func TestBenchCluster(t *testing.T) {
	cluster.NeedsLocalNodes(t, "SIGKILL and the footprint read from /proc")
	benchGate(t)
	ours, base := clusterMode(), baselineCluster()
	figs := map[string]benchFigures{}
	for _, d := range []*deployment{base, ours} {
		figs[d.name] = runBench(t, d, "wait1/cluster-client", []benchCase{
			{"planned switchover (delete master pod)", deleteMaster},
			{"unplanned failover (SIGKILL master)", killMaster},
			{"full restart (delete all pods)", deleteAll},
		}, "redis-cluster-ha-agent")
	}
	writeBench(t, "bench-cluster.md", "Cluster mode: redis-ha-agent vs seed 002 (update-node.sh + manual create)", ours, base, figs)
}

// runBench deploys d, measures the agent's idle footprint (when it has
// one), then runs each case and keeps the figures of workload wl.
func runBench(t *testing.T, d *deployment, wl string, cases []benchCase, serviceAccount string) benchFigures {
	f := benchFigures{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	f["cold bootstrap (apply → healthy)"] = fmt.Sprintf("%.1fs", deploy(t, ctx, d).Seconds())
	if d.agent {
		idleFootprint(t, ctx, d, serviceAccount, f)
	}
	for _, c := range cases {
		var before map[string]int
		var usage map[int]procUsage
		if d.agent {
			before, usage = agentPIDs(d.ns), map[int]procUsage{}
			for _, pid := range before {
				usage[pid], _ = readUsage(pid)
			}
		}
		start := time.Now()
		o := runScenario(t, d, fault{name: c.name}, c.inject)
		for _, r := range o.rows {
			t.Logf("%s", r.markdown())
			if r.res.Name != wl {
				continue
			}
			f[c.name+": write gap"] = fmt.Sprintf("%.2fs", r.res.LongestGap.Seconds())
			f[c.name+": WAIT 1-acked writes lost"] = fmt.Sprint(r.res.AckedLost)
			rec := "not healthy again"
			if r.recovered > 0 {
				rec = fmt.Sprintf("%.1fs", r.recovered.Seconds())
			}
			f[c.name+": healthy again after"] = rec
			if d.agent && !d.cluster {
				f[c.name+": master moved → label moved"] = labelDelay(r.moved, r.labelMoved)
			}
			if r.note != "" {
				f[c.name+": note"] = r.note
			}
		}
		for _, r := range o.rows {
			if r.res.Mode == workload.ModeNoWait {
				f[c.name+": acked writes lost without WAIT ("+r.res.Name+")"] = fmt.Sprint(r.res.AckedLost)
			}
		}
		if d.agent && strings.HasPrefix(c.name, "unplanned") {
			el := time.Since(start).Seconds()
			var cpu float64
			var rss int64
			for pod, pid := range agentPIDs(d.ns) {
				if before[pod] != pid {
					continue // restarted: only agents alive throughout count
				}
				u, err := readUsage(pid)
				if err != nil {
					continue
				}
				cpu = max(cpu, (u.cpuS-usage[pid].cpuS)/el*100)
				rss = max(rss, u.rssKB)
			}
			f["agent CPU during failover (max per agent, % of a core)"] = fmt.Sprintf("%.2f%%", cpu)
			f["agent RSS after failover (max, MB)"] = fmt.Sprintf("%.1f", float64(rss)/1024)
		}
		if dir := reportDir(t); dir != "" {
			slug := strings.NewReplacer(" ", "-", "(", "", ")", "", ":", "").Replace(strings.SplitN(c.name, " (", 2)[0])
			p := filepath.Join(dir, fmt.Sprintf("timeline-bench-%s-%s.png", d.name, slug))
			if err := workload.PlotTimeline(p, d.name+": "+c.name, o.histories, o.timeline); err != nil {
				t.Errorf("plot: %v", err)
			}
		}
	}
	return f
}

// idleFootprint: 60 s of a healthy, idle deployment.
func idleFootprint(t *testing.T, ctx context.Context, d *deployment, sa string, f benchFigures) {
	if err := createAgentFlowSchema(ctx, d, sa); err != nil {
		t.Errorf("API request count: %v", err)
		return
	}
	defer deleteFlowSchema(d)
	// Let a request or two classify into the new schema before counting.
	_ = hold(ctx, 5*time.Second)
	pids := agentPIDs(d.ns)
	if len(pids) != d.pods {
		t.Errorf("found %d agent processes for %d pods in /proc", len(pids), d.pods)
	}
	before := map[int]procUsage{}
	for _, pid := range pids {
		before[pid], _ = readUsage(pid)
	}
	r0, err := dispatchedRequests(ctx, flowSchemaName(d))
	if err != nil {
		t.Errorf("%v", err)
	}
	const window = 60 * time.Second
	start := time.Now()
	_ = hold(ctx, window)
	r1, err := dispatchedRequests(ctx, flowSchemaName(d))
	if err != nil {
		t.Errorf("%v", err)
	}
	el := time.Since(start)
	var rss, anon, file int64
	var cpu float64
	var size int64
	for _, pid := range pids {
		u, err := readUsage(pid)
		if err != nil {
			t.Errorf("agent pid %d: %v", pid, err)
			continue
		}
		rss, anon, file = max(rss, u.rssKB), max(anon, u.anonKB), max(file, u.fileKB)
		cpu = max(cpu, (u.cpuS-before[pid].cpuS)/el.Seconds()*100)
		size, _ = binarySize(pid)
	}
	f["agent RSS idle (max, MB)"] = fmt.Sprintf("%.1f", float64(rss)/1024)
	f["agent RSS idle: anonymous, heap and stacks (max, MB)"] = fmt.Sprintf("%.1f", float64(anon)/1024)
	f["agent RSS idle: file pages of the shared binary (max, MB)"] = fmt.Sprintf("%.1f", float64(file)/1024)
	f["agent CPU idle (max per agent, % of a core)"] = fmt.Sprintf("%.2f%%", cpu)
	f["API requests per pod per minute (steady state, API server's count)"] = fmt.Sprintf("%.1f", (r1-r0)/float64(d.pods)/el.Minutes())
	f["agent binary size (MB)"] = fmt.Sprintf("%.1f", float64(size)/1e6)
}

func writeBench(t *testing.T, file, title string, ours, base *deployment, figs map[string]benchFigures) {
	keys := map[string]bool{}
	var order []string
	for _, d := range []*deployment{ours, base} {
		for k := range figs[d.name] {
			if !keys[k] {
				keys[k] = true
				order = append(order, k)
			}
		}
	}
	sortMetrics(order)
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n| metric | redis-ha-agent | baseline |\n|---|---:|---:|\n", title)
	for _, k := range order {
		o, bs := figs[ours.name][k], figs[base.name][k]
		if o == "" {
			o = "—"
		}
		if bs == "" {
			bs = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", k, o, bs)
	}
	t.Logf("\n%s", b.String())
	if dir := reportDir(t); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(b.String()), 0o644); err != nil {
			t.Errorf("write %s: %v", file, err)
		}
	}
}

func sortMetrics(keys []string) {
	rank := func(k string) int {
		switch {
		case strings.HasPrefix(k, "cold"):
			return 0
		case strings.HasPrefix(k, "planned"):
			return 1
		case strings.HasPrefix(k, "unplanned"):
			return 2
		case strings.HasPrefix(k, "full"):
			return 3
		}
		return 4
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && (rank(keys[j]) < rank(keys[j-1]) || rank(keys[j]) == rank(keys[j-1]) && keys[j] < keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// labelDelay is the time from another pod becoming writable (Sentinel's
// switch) to the master label on another pod, from the row's "1.23s"
// figures; "—" when either never happened.
func labelDelay(moved, labelMoved string) string {
	m, err1 := strconv.ParseFloat(strings.TrimSuffix(moved, "s"), 64)
	l, err2 := strconv.ParseFloat(strings.TrimSuffix(labelMoved, "s"), 64)
	if err1 != nil || err2 != nil {
		return "—"
	}
	return fmt.Sprintf("%.2fs", l-m)
}
