package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

type upCmd struct {
	BinDir  string        `env:"LOCALKUBE_BIN_DIR" help:"Directory with the control-plane binaries (default: build into the cache with e2e/hack/build-k8s.sh)."`
	Timeout time.Duration `default:"60m" help:"How long to wait for the cluster (a cold build of the control plane takes minutes)."`
}

// Run starts `localkube serve` as a detached daemon (own session, output in
// <state>/logs/daemon.log) and follows its progress until the cluster is
// ready, so `up` returns with the cluster left running.
func (u *upCmd) Run(ctx context.Context, g *cli) error {
	start := time.Now()
	cl := localkube.NewClient(g.StateDir)
	if s, err := cl.Status(ctx); err == nil && s.State == localkube.StateReady {
		fmt.Printf("already running: run %s (pid %d)\n%s\n", s.RunID, s.PID, s.Kubeconfig)
		return nil
	} else if err == nil {
		return fmt.Errorf("a daemon (pid %d) is %s in %s; wait or run `localkube down`", s.PID, s.State, g.StateDir)
	}
	logDir := filepath.Join(g.StateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(logDir, "daemon.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"--state-dir", g.StateDir, "serve"}
	if u.BinDir != "" {
		args = append(args, "--bin-dir", u.BinDir)
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon %s: %w", self, err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	fmt.Printf("daemon pid %d, log %s\n", pid, logPath)

	ctx, cancel := context.WithTimeout(ctx, u.Timeout)
	defer cancel()
	shown := 0
	lastProgress := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready after %s (daemon pid %d keeps trying; see %s or run `localkube down`)", u.Timeout, pid, logPath)
		case <-tick.C:
		}
		s, err := cl.Status(ctx)
		if err != nil {
			if !processAlive(pid) {
				return fmt.Errorf("daemon exited before it was ready; last lines of %s:\n%s", logPath, localkube.TailFile(logPath, 20))
			}
			continue
		}
		for ; shown < len(s.Timings); shown++ {
			p := s.Timings[shown]
			fmt.Printf("  %-24s %8s\n", p.Name, p.Duration.Round(time.Millisecond))
			lastProgress = time.Now()
		}
		if time.Since(lastProgress) > 15*time.Second {
			// The first run builds the control plane from source (~15 min).
			fmt.Printf("  still working (first run builds kube-* and coredns); follow: tail -f %s\n", logPath)
			lastProgress = time.Now()
		}
		switch s.State {
		case localkube.StateReady:
			fmt.Printf("cluster %s ready in %s\nkubectl %s (or any kubectl)\nexport KUBECONFIG=%s\n%s\n", s.RunID, time.Since(start).Round(time.Millisecond), s.Kubectl, s.Kubeconfig, s.Kubeconfig)
			return nil
		case localkube.StateFailed:
			_ = cl.Down(context.Background())
			return fmt.Errorf("cluster failed to start: %s\n(component logs in %s)", s.Error, logDir)
		}
	}
}

type serveCmd struct {
	BinDir   string `env:"LOCALKUBE_BIN_DIR" help:"Directory with the control-plane binaries."`
	RepoRoot string `env:"LOCALKUBE_REPO_ROOT" help:"redis-ha-agent checkout (default: found above the working directory)."`
}

func (s *serveCmd) Run(ctx context.Context, g *cli) error {
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: time.RFC3339}).With().Timestamp().Logger()
	return localkube.RunDaemon(ctx, localkube.Options{StateDir: g.StateDir, BinDir: s.BinDir, RepoRoot: s.RepoRoot, Log: log})
}

type downCmd struct {
	Timeout time.Duration `default:"2m" help:"How long to wait for the teardown."`
}

func (d *downCmd) Run(ctx context.Context, g *cli) error {
	cl := localkube.NewClient(g.StateDir)
	s, err := cl.Status(ctx)
	if err != nil {
		fmt.Println("no cluster running in", g.StateDir)
		return nil
	}
	if err := cl.Down(ctx); err != nil {
		return fmt.Errorf("ask daemon (pid %d) to stop: %w", s.PID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	start := time.Now()
	for processAlive(s.PID) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("daemon pid %d still running after %s; see %s", s.PID, d.Timeout, filepath.Join(g.StateDir, "logs", "daemon.log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Printf("cluster %s down in %s\n", s.RunID, time.Since(start).Round(time.Millisecond))
	return nil
}

var errNoDaemon = errors.New("no cluster running: start one with `localkube up`")

// processAlive reports whether pid runs; a zombie (exited, not yet reaped by
// whoever adopted the detached daemon) counts as gone.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
