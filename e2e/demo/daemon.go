package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// ServeArg is the hidden argument that makes the demo binary run the
// cluster daemon (localkube.RunDaemon) instead of the demo.
const ServeArg = "serve-cluster"

// Daemon is a localkube cluster running in a background process of its own,
// so that it can outlive the demo (--keep) and answer `localkube` CLI
// commands (exec, faults, down) on its control socket.
type Daemon struct {
	StateDir string
	PID      int
	Status   localkube.Status
	client   *localkube.Client
}

// quietFor is how long StartDaemon lets the bring-up run without a phase
// completing before it calls onQuiet: on a cold cache the daemon builds
// Kubernetes and the images first, for minutes.
const quietFor = 30 * time.Second

// StartDaemon re-executes this binary with ServeArg in a new session
// (detached from the terminal) and follows its progress until the cluster is
// ready, calling onPhase as each phase of the bring-up completes, and
// onQuiet with the time so far and the daemon log's last line whenever
// quietFor passed without either.
func StartDaemon(ctx context.Context, stateDir string, onPhase func(localkube.Phase), onQuiet func(elapsed time.Duration, lastLog string)) (*Daemon, error) {
	cl := localkube.NewClient(stateDir)
	if s, err := cl.Status(ctx); err == nil {
		return nil, fmt.Errorf("a local cluster (run %s, pid %d, %s) is already running in %s: stop it with `cd e2e && go run ./cmd/localkube --state-dir %s down`, or pass --state-dir", s.RunID, s.PID, s.State, stateDir, stateDir)
	}
	logDir := filepath.Join(stateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, "daemon.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, ServeArg, "--state-dir", stateDir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the cluster daemon %s: %w", self, err)
	}
	d := &Daemon{StateDir: stateDir, PID: cmd.Process.Pid, client: cl}
	// The daemon reaps itself into init once we exit; until then a goroutine
	// waits for it so it never lingers as a zombie of ours.
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	shown := 0
	start, lastOut := time.Now(), time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = d.Down(context.Background(), 2*time.Minute)
			return nil, fmt.Errorf("cluster not ready: %w (daemon log %s)", ctx.Err(), logPath)
		case <-exited:
			return nil, fmt.Errorf("the cluster daemon exited before it was ready; last lines of %s:\n%s", logPath, localkube.TailFile(logPath, 15))
		case <-tick.C:
		}
		if time.Since(lastOut) >= quietFor && onQuiet != nil {
			onQuiet(time.Since(start), localkube.TailFile(logPath, 1))
			lastOut = time.Now()
		}
		s, err := cl.Status(ctx)
		if err != nil {
			continue // socket not up yet
		}
		for ; shown < len(s.Timings); shown++ {
			if onPhase != nil {
				onPhase(s.Timings[shown])
			}
			lastOut = time.Now()
		}
		switch s.State {
		case localkube.StateReady:
			d.Status = s
			return d, nil
		case localkube.StateFailed:
			_ = d.Down(context.Background(), 2*time.Minute)
			return nil, fmt.Errorf("the local cluster failed to start: %s (logs in %s)", s.Error, logDir)
		}
	}
}

// Env connects to the daemon's cluster.
func (d *Daemon) Env(ctx context.Context) (Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return Env{}, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", d.Status.Kubeconfig)
	if err != nil {
		return Env{}, fmt.Errorf("load the cluster's kubeconfig %s: %w", d.Status.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Env{}, err
	}
	dns, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return Env{}, fmt.Errorf("find the cluster DNS Service kube-system/kube-dns: %w", err)
	}
	bin, err := buildAgentCLI(ctx, root, d.StateDir)
	if err != nil {
		return Env{}, err
	}
	n := newClusterNetwork(d.Status.RunID, dns.Spec.ClusterIP)
	op := func(name string) func(ctx context.Context, ns, pod string) error {
		return func(ctx context.Context, ns, pod string) error {
			_, err := d.client.Do(ctx, localkube.Op{Op: name, Namespace: ns, Pod: pod})
			return err
		}
	}
	return Env{
		Kubeconfig:  d.Status.Kubeconfig,
		Kube:        cs,
		Dial:        n.Dial,
		KillPod:     op("kill-pod"),
		Freeze:      op("freeze"),
		Thaw:        op("thaw"),
		AgentBinary: bin,
		StateDir:    d.StateDir,
		RepoRoot:    root,
	}, nil
}

// Down asks the daemon to tear the cluster down and waits until it exited.
func (d *Daemon) Down(ctx context.Context, timeout time.Duration) error {
	if err := d.client.Down(ctx); err != nil && processAlive(d.PID) {
		return fmt.Errorf("ask the cluster daemon (pid %d) to stop: %w", d.PID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for processAlive(d.PID) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster daemon pid %d still running after %s; see %s", d.PID, timeout, filepath.Join(d.StateDir, "logs", "daemon.log"))
		case <-tick.C:
		}
	}
	return nil
}

// processAlive reports whether pid runs; a zombie counts as gone.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// quietLine is what the demo prints while the bring-up has been quiet: the
// time so far and the daemon log's last line without its timestamp and run
// ID, which on a cold cache names what is being built (build-k8s.sh's and
// the image builder's progress lines), then what that build took cold.
func quietLine(elapsed time.Duration, lastLog string) string {
	fields := strings.Fields(lastLog)
	if len(fields) >= 2 && len(fields[1]) == 3 {
		if _, err := time.Parse(time.RFC3339, fields[0]); err == nil {
			fields = fields[2:] // zerolog's console time and level
		}
	}
	kept := fields[:0]
	building := false
	for _, f := range fields {
		switch {
		case strings.HasPrefix(f, "run="):
			continue
		case f == "component=build-k8s" || f == "component=images":
			building = true
		}
		kept = append(kept, f)
	}
	last := []rune(strings.Join(kept, " "))
	if len(last) > 100 {
		last = append(last[:97], []rune("...")...)
	}
	if len(last) == 0 {
		last = []rune("(empty)")
	}
	line := fmt.Sprintf("… %s so far, the daemon log's last line: %s", fmtDur(elapsed.Round(time.Second)), string(last))
	if building {
		line += " (built once: Kubernetes and the images took 8.7 min of a cold make demo on 2 cores)"
	}
	return line
}
