package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// Options configure Run.
type Options struct {
	// StateDir is the local cluster's state dir (default /tmp/localkube,
	// where every `localkube` CLI command looks by default).
	StateDir string
	// Keep leaves the cluster running and prints how to reach it.
	Keep bool
	// Out receives the narration.
	Out io.Writer
}

const steps = 7

// Run is the whole demo. It returns an error when any check failed; the
// narration on Out says which and where the logs are.
func Run(ctx context.Context, o Options) error {
	if o.StateDir == "" {
		o.StateDir = "/tmp/localkube"
	}
	start := time.Now()
	p := NewPrinter(o.Out)
	p.printf("redis-ha-agent demo: Redis made highly available on Kubernetes by a sidecar, no operator.\n")
	p.printf("This starts a local Kubernetes cluster (a real kube-apiserver, scheduler, controller-manager,\n")
	p.printf("CoreDNS and kube-proxy; pods run on three upstream kubelets on containerd), deploys Redis from\n")
	p.printf("manifests/ in both modes, then deletes and kills masters while a client writes. Every step is a\n")
	p.printf("check (✓/✗).\n")
	p.printf("Logs: %s (control plane and nodes), %s (one dir per pod)\n",
		filepath.Join(o.StateDir, "logs"), localkube.PodLogDirs(o.StateDir))

	p.Section(1, steps, "Local Kubernetes cluster")
	d, err := StartDaemon(ctx, o.StateDir,
		func(ph localkube.Phase) { p.OK(phaseName(ph.Name), ph.Duration) },
		func(elapsed time.Duration, lastLog string) { p.Info("%s", quietLine(elapsed, lastLog)) })
	if err != nil {
		p.Fail("start the local cluster", err)
		return err
	}
	upTook := time.Since(start)
	p.OK(fmt.Sprintf("cluster ready: nodes node-a, node-b, node-c (kubeconfig %s)", d.Status.Kubeconfig), upTook)
	p.Record("local cluster up", upTook, "")
	env, err := d.Env(ctx)
	if err != nil {
		p.Fail("connect to the local cluster", err)
		_ = d.Down(context.WithoutCancel(ctx), 2*time.Minute)
		return err
	}

	runModes(ctx, env, p)

	p.Section(6, steps, "Summary")
	p.Summary()
	total := time.Since(start)

	p.Section(7, steps, "Tear down")
	if o.Keep && ctx.Err() == nil {
		printKeep(p, o.StateDir, d)
	} else {
		t := time.Now()
		err := d.Down(context.WithoutCancel(ctx), 2*time.Minute)
		p.Check("cluster stopped, network namespaces removed", time.Since(t), err)
		p.Info("(run `make demo KEEP=1` to keep it running and explore)")
	}
	if n := p.Failed(); n > 0 {
		p.printf("\n✗ %d check(s) failed after %s. Logs: %s and %s\n", n, fmtDur(total), filepath.Join(o.StateDir, "logs"), localkube.PodLogDirs(o.StateDir))
		return fmt.Errorf("%d check(s) failed", n)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	p.printf("\n✓ all checks passed in %s\n", fmtDur(total))
	return nil
}

// runModes runs the sentinel and cluster parts; a step that leaves its
// StatefulSet unhealthy skips the rest of its mode (they build on it), not
// the other mode.
func runModes(ctx context.Context, env Env, p *Printer) {
	s := &Sentinel{Env: env, P: p, Namespace: "demo-sentinel", STS: "redis", Pods: 3, SeedKeys: 100}
	p.Section(2, steps, "Sentinel mode: 1 master + 2 replicas, a Sentinel in every pod")
	_ = s.Deploy(ctx)
	p.Section(3, steps, "Planned switchover: delete the master pod")
	_ = after(p, s.healthy, func() error { return s.Switchover(ctx) })
	p.Section(4, steps, "Crash: SIGKILL every process of the new master pod")
	_ = after(p, s.healthy, func() error { return s.Crash(ctx) })

	c := &Cluster{Env: env, P: p, Namespace: "demo-cluster", STS: "redis-cluster", Pods: 6, Keys: 1000}
	p.Section(5, steps, "Cluster mode: a Redis Cluster of 3 masters × 1 replica, created by the agents")
	_ = c.Deploy(ctx)
	p.Sub("SIGKILL every process of a master pod (the kubelet restarts them at once)")
	_ = after(p, c.healthy, func() error { return c.Crash(ctx) })
	p.Sub("Freeze a master pod (cgroup freezer, a hung node) until its replica takes over")
	_ = after(p, c.healthy, func() error { return c.Hang(ctx) })
}

var errSkipped = errors.New("skipped")

// after runs step only when the mode is in a state it can build on.
func after(p *Printer, healthy bool, step func() error) error {
	if !healthy {
		p.Info("skipped: the previous step did not leave the StatefulSet healthy")
		return errSkipped
	}
	return step()
}

func phaseName(n string) string {
	switch n {
	case "cleanup":
		return "leftovers of earlier runs removed"
	case "build", "build control plane":
		return "control plane binaries (built once, then cached)"
	case "images (overlapped)":
		return "images built or found in the cache (while the control plane starts)"
	case "network+pki":
		return "cluster network and certificates"
	case "etcd":
		return "etcd"
	case "apiserver":
		return "kube-apiserver ready"
	case "controllers+dns+proxy":
		return "controller-manager, scheduler, CoreDNS, kube-proxy"
	case "nodes":
		return "3 nodes Ready"
	}
	return n
}

func printKeep(p *Printer, stateDir string, d *Daemon) {
	flag := ""
	if stateDir != "/tmp/localkube" {
		flag = " --state-dir " + stateDir
	}
	p.OK(fmt.Sprintf("cluster left running (daemon pid %d). From the repository root:", d.PID), 0)
	p.Info("export KUBECONFIG=%s", d.Status.Kubeconfig)
	if _, err := exec.LookPath("kubectl"); err != nil && d.Status.Kubectl != "" {
		p.Info("alias kubectl=%s   # built with the control plane, same version", d.Status.Kubectl)
	}
	p.Info("kubectl get pods -A -L redis-ha-agent/role")
	p.Info("kubectl get events -n demo-sentinel --field-selector reportingComponent=redis-ha-agent")
	p.Info("bin/redis-ha-agent status --namespace demo-sentinel --statefulset redis")
	p.Info("bin/redis-ha-agent status --namespace demo-cluster --statefulset redis-cluster")
	p.Info("(cd e2e && go run ./cmd/localkube%s -n demo-sentinel exec redis-0 -- redis-cli info replication)", flag)
	p.Info("(cd e2e && go run ./cmd/localkube%s -n demo-sentinel exec redis-0 -- redis-cli -h redis-master set hello world)", flag)
	p.Info("(cd e2e && go run ./cmd/localkube%s -n demo-cluster exec redis-cluster-0 -- redis-cli -c cluster nodes)", flag)
	p.Info("kubectl delete pod -n demo-sentinel <the master>   # then run status again")
	p.Info("Stop it: (cd e2e && go run ./cmd/localkube%s down)", flag)
}
