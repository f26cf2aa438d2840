package localkube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// prepareStateDir clears what a previous run of this state dir left (no run
// owns it: liveRunFor said so), after detaching any mounts below it so the
// removal cannot follow a bind mount out of the directory.
func (c *Cluster) prepareStateDir() error {
	if err := unmountUnder(c.stateDir); err != nil {
		return fmt.Errorf("state dir %s: %w", c.stateDir, err)
	}
	// logs/ itself stays: the daemon's own log is already open in it.
	old, _ := filepath.Glob(filepath.Join(c.stateDir, "logs", "k*.log"))
	for _, f := range append(old, filepath.Join(c.stateDir, "logs", compEtcd+".log"), filepath.Join(c.stateDir, "logs", compCoreDNS+".log")) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clear previous run's log: %w", err)
		}
	}
	for _, sub := range []string{"pki", "etcd", "apiserver", "kubelet"} {
		if err := os.RemoveAll(filepath.Join(c.stateDir, sub)); err != nil {
			return fmt.Errorf("clear previous run's %s: %w", filepath.Join(c.stateDir, sub), err)
		}
	}
	for _, sub := range []string{"logs", "bin", "kubelet"} {
		if err := os.MkdirAll(filepath.Join(c.stateDir, sub), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Join(c.stateDir, sub), err)
		}
	}
	return nil
}

// build makes sure the control-plane binaries exist and starts building the
// agent binary in the background: only the node agent needs it, so the
// build overlaps with starting the control plane. waitAgent collects it;
// Down stops it if Up fails first.
func (c *Cluster) build(ctx context.Context) error {
	c.agentDone = make(chan struct{})
	agentCtx, cancelAgent := context.WithCancel(ctx)
	c.cancelAgent = cancelAgent
	if c.opts.AgentBinary == "" {
		c.opts.AgentBinary = filepath.Join(c.stateDir, "bin", "redis-ha-agent")
		go func() {
			c.agentErr = buildAgent(agentCtx, c.opts, c.opts.AgentBinary)
			close(c.agentDone)
		}()
	} else {
		close(c.agentDone)
	}
	c.binDir = c.opts.BinDir
	if c.binDir == "" {
		dir, err := buildK8s(ctx, c.opts)
		if err != nil {
			return err
		}
		c.binDir = dir
	}
	for _, name := range []string{compAPIServer, compController, compScheduler, compCoreDNS, compKubeProxy} {
		if _, err := os.Stat(filepath.Join(c.binDir, name)); err != nil {
			return fmt.Errorf("control-plane binary %s missing in bin dir %s: fix the bin dir or leave it empty so e2e/hack/build-k8s.sh builds it: %w", name, c.binDir, err)
		}
	}
	return nil
}

func (c *Cluster) waitAgent(ctx context.Context) error {
	select {
	case <-c.agentDone:
		return c.agentErr
	case <-ctx.Done():
		return ctx.Err()
	}
}
