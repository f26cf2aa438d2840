package localkube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/images"
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
	for _, sub := range []string{"pki", "etcd", "apiserver", "volumes", "nodes"} {
		if err := os.RemoveAll(filepath.Join(c.stateDir, sub)); err != nil {
			return fmt.Errorf("clear previous run's %s: %w", filepath.Join(c.stateDir, sub), err)
		}
	}
	for _, sub := range []string{"logs"} {
		if err := os.MkdirAll(filepath.Join(c.stateDir, sub), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Join(c.stateDir, sub), err)
		}
	}
	return nil
}

// build makes sure the control-plane and node binaries exist.
func (c *Cluster) build(ctx context.Context) error {
	c.binDir = c.opts.BinDir
	if c.binDir == "" {
		dir, err := buildK8s(ctx, c.opts)
		if err != nil {
			return err
		}
		c.binDir = dir
	}
	for _, name := range []string{compAPIServer, compController, compScheduler, compCoreDNS, compKubeProxy, "kubelet", "crictl"} {
		if _, err := os.Stat(filepath.Join(c.binDir, name)); err != nil {
			return fmt.Errorf("control-plane binary %s missing in bin dir %s: fix the bin dir or leave it empty so e2e/hack/build-k8s.sh builds it: %w", name, c.binDir, err)
		}
	}
	return nil
}

// buildImages builds (or finds cached) the images the nodes run, in the
// background while the control plane starts; waitImages collects them.
func (c *Cluster) buildImages(ctx context.Context) {
	c.imagesDone = make(chan struct{})
	go func() {
		defer close(c.imagesDone)
		c.images, c.imagesErr = images.Build(ctx, images.Options{
			CacheDir: c.opts.ImageCacheDir,
			RepoRoot: c.opts.RepoRoot,
			Log:      c.log.With().Str("component", "images").Logger(),
		})
		if c.imagesErr != nil {
			return
		}
		// Tag the stand-ins under the names that can't be built here, and
		// say so: a substitution is never silent.
		c.imageAliases = map[string]string{}
		for alias, target := range images.Aliases() {
			c.imageAliases[alias] = target
			c.log.Info().Str("image", alias).Str("runs", target).Msg("image alias: this name runs a stand-in built here")
		}
	}()
}

func (c *Cluster) waitImages(ctx context.Context) error {
	select {
	case <-c.imagesDone:
		if c.imagesErr != nil {
			return fmt.Errorf("build images: %w", c.imagesErr)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
